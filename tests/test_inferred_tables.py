"""Issue 23: [tables.*].columns left out. The first rows bound for the table decide its columns,
as `chute load` decides them (names in snake_case, NA as NULL, dates in their format); the
table is created in that load's transaction and from then on fixes the columns."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import write

PENGUINS = """species,island,Culmen Length (mm),Body Mass (g),Date Egg,Sex
Adelie,Torgersen,39.1,3750,11/11/07,MALE
Adelie,Torgersen,NA,NA,11/16/07,NA
Gentoo,Biscoe,46.1,4500,11/27/07,FEMALE
"""


def project(folder: Path, tables: str, *, module: str = "", source: str = "") -> Path:
    text = f'[project]\nname = "inf"\n\n[landing]\npath = "landing"\n\n[source]\n{source}\n'
    if module:
        write(folder / "pipeline.py", module)
        text += '[pipeline]\nmodule = "pipeline.py"\n'
    write(folder / "chute.toml", text + tables)
    return folder


def columns_of(query, table: str) -> dict[str, str]:
    return dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                      "ORDER BY ordinal_position", (table,)))


def test_first_load_infers_then_the_table_fixes_the_columns(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\n')
    write(folder / "landing" / "a.csv", PENGUINS)
    result = cli("run", "-p", folder)
    assert "created table public.rows with the columns inferred" in result.output
    assert columns_of(query, "rows") == {
        "species": "text", "island": "text", "culmen_length_mm": "double precision", "body_mass_g": "bigint",
        "date_egg": "date", "sex": "text"}
    assert query("SELECT count(*), count(culmen_length_mm), count(sex), min(date_egg)::text FROM rows") == [
        (3, 2, 2, "2007-11-11")]
    # the file's own name is kept as the column's comment, as chute load keeps it
    assert query("SELECT col_description('rows'::regclass, 3)") == [("Culmen Length (mm)",)]
    # A later file is read into the table's columns: its dates in the same format, a value that
    # does not fit the locked type (text in a bigint column) quarantined, not a new type.
    write(folder / "landing" / "b.csv", "species,island,Culmen Length (mm),Body Mass (g),Date Egg,Sex\n"
                                        "Chinstrap,Dream,50.0,heavy,12/01/07,MALE\n"
                                        "Chinstrap,Dream,49.5,3800,12/02/07,FEMALE\n")
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["created_tables"] == {} and summary["rows_loaded"] == 1 and summary["rows_rejected"] == 1
    assert columns_of(query, "rows")["body_mass_g"] == "bigint"
    assert query("SELECT max(date_egg)::text FROM rows") == [("2007-12-02",)]


def test_a_column_the_first_file_lacks_follows_the_drift_policy(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\n')
    write(folder / "landing" / "a.csv", "id,name\n1,x\n")
    cli("run", "-p", folder)
    write(folder / "landing" / "b.csv", "id,name,extra\n2,y,z\n")
    result = cli("run", "-p", folder, expect=1)
    assert "extra" in result.output and "drift" in result.output
    assert query("SELECT count(*) FROM rows") == [(1,)]


def test_several_files_in_the_first_run(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\n')
    for i in range(5):
        write(folder / "landing" / f"f{i}.csv", "id,when\n" + "".join(f"{i * 10 + k},2024/01/{k + 1:02d}\n"
                                                                    for k in range(10)))
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["rows_loaded"] == 50 and list(summary["created_tables"]) == ["public.rows"]
    assert columns_of(query, "rows") == {"id": "bigint", "when": "date"}


def test_files_loaded_together_decide_together(tmp_path, cli, query, db_url):
    """Small files of the first run are loaded as one frame (a column one of them lacks is NULL
    in its rows): the table takes the columns of all of them."""
    folder = project(tmp_path / "p", '[tables.rows]\n')
    write(folder / "landing" / "a.csv", "id,v\n1,2.5\n")
    write(folder / "landing" / "b.csv", "id,v,w\n2,3.5,x\n")
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["files_loaded"] == 2
    assert columns_of(query, "rows") == {"id": "bigint", "v": "double precision", "w": "text"}


def test_a_file_that_fails_creates_no_table(tmp_path, cli, query, db_url):
    """The table is created in the load's transaction: a file that fails takes it back."""
    folder = project(tmp_path / "p", '[tables.rows]\n[tables.rows.contract]\nmin_rows = 5\n')
    write(folder / "landing" / "a.csv", "id,v\n1,2.5\n")
    assert "min_rows" in cli("run", "-p", folder, expect=1).output
    assert columns_of(query, "rows") == {}
    write(folder / "landing" / "b.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(5)))
    summary = json.loads(cli("run", "-p", folder, "--json", "--ignore-old-failures").output)
    assert list(summary["created_tables"]) == ["public.rows"]
    assert columns_of(query, "rows") == {"id": "bigint", "name": "text"}


def test_inferred_from_the_nodes_output_not_the_file(tmp_path, cli, query, db_url):
    module = '''import polars as pl
from chute import node


@node(inputs="rows", outputs="totals")
def totals(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.group_by("Shop Name").agg(pl.col("amount").sum().alias("Total Amount"),
                                          pl.col("day").first().alias("First Day"))
'''
    folder = project(tmp_path / "p", '[tables.totals]\nmode = "merge"\nprimary_key = ["shop_name"]\n', module=module)
    write(folder / "landing" / "a.csv", "Shop Name,amount,day,ignored\nA,1.5,2024-01-02,x\nB,2,2024-01-03,y\n")
    cli("run", "-p", folder)
    assert columns_of(query, "totals") == {"shop_name": "text", "total_amount": "double precision",
                                           "first_day": "date"}
    write(folder / "landing" / "b.csv", "Shop Name,amount,day,ignored\nA,10,2024-02-01,x\n")
    cli("run", "-p", folder)
    assert query("SELECT shop_name, total_amount FROM totals ORDER BY 1") == [("A", 10.0), ("B", 2.0)]
    key = query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'totals'::regclass")
    assert key == [("PRIMARY KEY (shop_name)",)]


def test_merge_still_needs_a_primary_key(tmp_path, cli):
    folder = project(tmp_path / "p", '[tables.rows]\nmode = "merge"\n')
    result = cli("run", "-p", folder, expect=2)
    assert "needs a primary_key" in result.output


def test_a_key_the_data_does_not_have_fails_the_file(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\nmode = "merge"\nprimary_key = ["ID"]\n')
    write(folder / "landing" / "a.csv", "ID,v\n1,2\n")
    result = cli("run", "-p", folder, expect=1)
    assert "names ID as key column(s)" in result.output and "id, v" in result.output
    assert columns_of(query, "rows") == {}


def test_names_keep(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\nnames = "keep"\n')
    write(folder / "landing" / "a.csv", "Shop Name,N\nA,1\n")
    cli("run", "-p", folder)
    assert columns_of(query, "rows") == {"Shop Name": "text", "N": "bigint"}


def test_an_existing_table_is_the_declaration(tmp_path, cli, query, db_url):
    """A table made before (by hand, or by chute load) is adopted: its columns, its types."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE rows (id integer, price numeric(10,2))")
    folder = project(tmp_path / "p", '[tables.rows]\n')
    write(folder / "landing" / "a.csv", "id,price\n1,2.5\n")
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["created_tables"] == {}
    assert query("SELECT id, price::text FROM rows") == [(1, "2.50")]


def test_status_shows_inferred_tables(tmp_path, cli, query, db_url):
    folder = project(tmp_path / "p", '[tables.rows]\n')
    write(folder / "landing" / "a.csv", "id,v\n1,2.5\n")
    assert "rows: columns inferred at its first load (not created yet)" in cli("status", "-p", folder).output
    cli("run", "-p", folder)
    shown = json.loads(cli("status", "-p", folder, "--json").output)["inferred_tables"]
    assert shown == {"rows": {"created": True, "columns": {"id": "bigint", "v": "double precision"}}}

"""Mistakes a newcomer makes first (found by following the README with awkward files): each
ends with a message that names what to change, and no row is lost, made up or doubled."""

from __future__ import annotations

import io
import json

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import write


def _project(folder, tables: str = "", source: str = "", landing: str = ""):
    write(folder / "chute.toml", f'[project]\nname = "p"\n{landing}\n{source}\n{tables}\n')
    (folder / "landing").mkdir(exist_ok=True)
    return folder


ROWS = '[tables.rows]\ncolumns = { id = "bigint", name = "text" }\n'


def _execute(db_url: str, statement: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement)


def test_a_project_with_no_table_refuses_to_run_and_its_files_load_once_one_is_added(tmp_path, cli, query, db_url):
    folder = _project(tmp_path)
    write(folder / "landing" / "first.csv", "id,name\n1,a\n2,b\n")
    out = cli("run", "-p", folder, expect=2).output
    assert "no table receives the rows; add a [tables.rows] section" in " ".join(out.split())
    _project(folder, ROWS)
    cli("run", "-p", folder)
    assert query("SELECT id, name FROM rows ORDER BY id") == [(1, "a"), (2, "b")]


def test_a_mistyped_landing_path_is_an_error_naming_the_setting(tmp_path, cli, db_url):
    folder = _project(tmp_path, ROWS, landing='[landing]\npath = "landin"')
    out = " ".join(cli("run", "-p", folder, expect=2).output.split())
    assert f"the landing folder {folder / 'landin'} does not exist; create it, or fix [landing] path" in out


def test_utf16_without_a_byte_order_mark_fails_that_file_only_and_names_the_encodings_to_set(tmp_path, cli, query,
                                                                                            db_url):
    folder = _project(tmp_path, ROWS, source='[source]\nencoding = "utf-16"')
    write(folder / "landing" / "ok16.csv", "id,name\n1,Zoë\n".encode("utf-16"))  # with a byte-order mark
    write(folder / "landing" / "be16.csv", "id,name\n2,Åsa\n".encode("utf-16-be"))
    result = json.loads(cli("run", "-p", folder, "--json", expect=1).output)
    errors = {f["name"]: f["error"] for f in result["files"] if f["status"] == "failed"}
    assert list(errors) == ["be16.csv"] and "set [source] encoding to one that names the order: utf-16-le or " \
        "utf-16-be" in errors["be16.csv"]
    assert query("SELECT id, name FROM rows") == [(1, "Zoë")]
    # chute load names its option, and says it without a traceback
    out = cli("load", folder / "landing" / "be16.csv", "--into", "t16", "--encoding", "utf-16", expect=2).output
    assert "set --encoding to one that names the order: utf-16-le or utf-16-be" in " ".join(out.split())
    cli("load", folder / "landing" / "be16.csv", "--into", "t16", "--encoding", "utf-16-be")
    assert query("SELECT id, name FROM t16") == [(2, "Åsa")]


@pytest.mark.parametrize("header, drift, hint", [
    # The delimiter is checked first now (issue 23): the file fails before its columns are compared.
    ("id;name", "freeze", "while ';' splits 100% of them into 2 columns; set [source] delimiter = ';'"),
    ("id;name", "discard", "while ';' splits 100% of them into 2 columns; set [source] delimiter = ';'"),
    ("ID,Name", "discard", "names differ in case only ('ID' is 'id', 'Name' is 'name' in the table)"),
])
def test_data_with_none_of_the_tables_columns_fails_with_a_hint_and_never_loads_rows_of_nulls(
        tmp_path, cli, query, db_url, header, drift, hint):
    tables = ROWS + f'[tables.rows.contract]\ndrift = "{drift}"\n'
    folder = _project(tmp_path, tables)
    write(folder / "landing" / "x.csv", f"{header}\n" + header.replace("id", "1").replace("ID", "1") + "\n")
    result = json.loads(cli("run", "-p", folder, "--json", expect=1).output)
    error = result["files"][0]["error"]
    assert hint in error
    if ";" not in header:
        assert "none of the table's columns (id, name) is in the data" in error
    assert query("SELECT count(*) FROM rows") == [(0,)]


def test_a_missing_column_names_its_case_twin(tmp_path, cli, db_url):
    folder = _project(tmp_path, ROWS)
    write(folder / "landing" / "x.csv", "id,Name\n1,a\n")
    error = json.loads(cli("run", "-p", folder, "--json", expect=1).output)["files"][0]["error"]
    assert "the data has no column(s) name (it has: id, Name); names differ in case only ('Name' is 'name' in " \
        "the table)" in error


@pytest.mark.parametrize("args, message", [
    (["--type", "nosuch=bigint"], "--type: p.csv has no column 'nosuch' (it has: id, name)"),
    (["--mode", "merge", "--primary-key", "nosuch"], "--primary-key: p.csv has no column 'nosuch' (it has: id, name)"),
    (["--mode", "merge"], "--mode merge needs --primary-key COL[,COL]"),
])
def test_load_options_naming_what_the_file_lacks_are_refused(tmp_path, cli, query, db_url, args, message):
    path = write(tmp_path / "p.csv", "id,name\n1,a\n")
    out = cli("load", path, "--into", "p", *args, expect=2).output
    assert message in " ".join(out.split())
    assert query("SELECT to_regclass('public.p') IS NULL") == [(True,)]


@pytest.mark.parametrize("into, message", [
    ("", "--into '': write TABLE or SCHEMA.TABLE"),
    ("a.b.c", "--into 'a.b.c': write TABLE or SCHEMA.TABLE"),
    ("chute.files", "schema chute belongs to chute (its ledger)"),
    ("pg_catalog.x", "schema pg_catalog belongs to PostgreSQL"),
    ("t" * 64, "is longer than PostgreSQL's 63-byte names"),
])
def test_load_into_a_name_postgresql_or_chute_cannot_take_is_refused(tmp_path, cli, query, db_url, into, message):
    path = write(tmp_path / "p.csv", "id\n1\n")
    assert message in " ".join(cli("load", path, "--into", into, expect=2).output.split())
    assert query("SELECT count(*) FROM pg_namespace WHERE nspname = 'a.b'") == [(0,)]


def test_a_parquet_file_is_named_as_such_by_load_and_by_a_csv_project(tmp_path, cli, db_url):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [1]}), buffer)
    path = write(tmp_path / "landing" / "p.csv", buffer.getvalue())
    # chute load reads what the file holds, whatever its name says (issue 23): a Parquet file loads.
    summary = json.loads(cli("load", path, "--into", "p", "--json").output)
    assert summary["rows_loaded"] == 1 and summary["schema"]["format"] == "parquet"
    folder = _project(tmp_path, ROWS)
    error = json.loads(cli("run", "-p", folder, "--json", expect=1).output)["files"][0]["error"]
    assert error == "this is a Parquet file, not CSV text; set [source] format = 'parquet' to read it"


def test_loading_again_with_the_right_encoding_says_the_quarantined_records_wait_for_replay(tmp_path, cli, query,
                                                                                           db_url):
    path = write(tmp_path / "latin.csv", "id,name\n1,plain\n2,Zoë\n3,Åsa\n".encode("latin-1"))
    # The encoding is sniffed now (issue 23); a wrong one given by hand still quarantines the rows it garbles.
    first = json.loads(cli("load", path, "--into", "people", "--encoding", "utf-8", "--json").output)
    assert first["rows_loaded"] == 1 and first["rows_rejected"] == 2 and first["pending_rejects"] == 0
    again = cli("load", path, "--into", "people", "--encoding", "latin-1")
    assert "2 record(s) of this file, quarantined when it was loaded, are still pending" in " ".join(
        again.output.split())
    assert json.loads(cli("load", path, "--into", "people", "--encoding", "latin-1", "--json").output)[
        "pending_rejects"] == 2
    cli("load", path, "--into", "people", "--encoding", "latin-1", "--replay")
    assert query("SELECT id, name FROM people ORDER BY id") == [(1, "plain"), (2, "Zoë"), (3, "Åsa")]
    assert json.loads(cli("load", path, "--into", "people", "--json").output)["pending_rejects"] == 0


def test_merge_into_an_existing_table_needs_a_unique_key_on_the_merge_columns(tmp_path, cli, query, db_url):
    _execute(db_url, "CREATE TABLE m (id bigint, name text); INSERT INTO m VALUES (1, 'a'), (1, 'b')")
    path = write(tmp_path / "m.csv", "id,name\n1,new\n")
    out = " ".join(cli("load", path, "--into", "m", "--mode", "merge", "--primary-key", "id", expect=2).output.split())
    assert "table public.m has no primary key or unique index on (id) or on some of those columns: a merge would " \
        "update every row sharing a key" in out
    assert query("SELECT name FROM m ORDER BY name") == [("a",), ("b",)]
    _execute(db_url, "DELETE FROM m WHERE name = 'b'; CREATE UNIQUE INDEX ON m (id) WHERE id > 0")
    cli("load", path, "--into", "m", "--mode", "merge", "--primary-key", "id", expect=2)  # a partial index is not
    _execute(db_url, "CREATE UNIQUE INDEX ON m (id) INCLUDE (name)")  # INCLUDE columns are not part of the key
    cli("load", path, "--into", "m", "--mode", "merge", "--primary-key", "id")
    assert query("SELECT id, name FROM m") == [(1, "new")]
    # a unique key on some of the merge columns is enough: no two rows share the whole merge key
    cli("load", write(tmp_path / "m2.csv", "id,name\n2,two\n"), "--into", "m", "--mode", "merge",
        "--primary-key", "id,name")
    assert query("SELECT id, name FROM m ORDER BY id") == [(1, "new"), (2, "two")]


def test_a_file_where_no_record_parses_fails_naming_the_first_line_that_does_not(tmp_path, cli, db_url):
    # chute load sniffs ';' (issue 23): every record then has a field too many
    said = ("ragged row: expected 2 columns, got 3: '1;Zürich;1,5' (delimiter is ';') (no record could be read; "
            "the first refused is on line 2: ragged row: expected 2 fields, got 3)")
    path = write(tmp_path / "semi.csv", "id;name\n1;Zürich;1,5\n2;Bern;2,5\n")
    assert " ".join(cli("load", path, "--into", "semi", expect=2).output.split()) == f"error: semi.csv: {said}"
    folder = _project(tmp_path / "p", ROWS)  # a project reads with its own delimiter (',')
    write(folder / "landing" / "semi.csv", path.read_bytes())
    said = ("ragged row: expected 1 column, got 2: '1;Zürich;1,5' (delimiter is ',') (no record could be read; "
            "the first refused is on line 2: ragged row: expected 1 fields, got 2)")
    assert json.loads(cli("run", "-p", folder, "--json", expect=1).output)["files"][0]["error"] == said


def test_an_error_of_a_command_given_json_is_a_json_document_on_stdout(tmp_path, cli, db_url):
    path = write(tmp_path / "p.csv", "id\n1\n")
    result = cli("load", path, "--into", "a.b.c", "--json", expect=2)
    assert json.loads(result.stdout) == {"error": "--into 'a.b.c': write TABLE or SCHEMA.TABLE, e.g. --into prices "
                                         "or --into sales.prices", "exit_status": 2}
    assert cli("load", path, "--into", "a.b.c", expect=2).stdout == ""  # without --json: stderr only

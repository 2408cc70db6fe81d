"""`chute load FILE --into TABLE`: infer, create, load, exactly once."""

from __future__ import annotations

import json

import psycopg
import pytest

from conftest import write


def test_load_infers_schema_and_loads(tmp_path, cli, query, db_url):
    path = write(tmp_path / "people.csv", "id,name,born,score,active\n1,Ann,1990-05-01,1.5,true\n2,Bob,,2,false\n")
    summary = json.loads(cli("load", path, "--into", "people", "--json").output)
    assert summary["files_loaded"] == 1 and summary["rows_loaded"] == 2
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'people'"))
    assert types == {"id": "bigint", "name": "text", "born": "date", "score": "double precision", "active": "boolean"}
    assert query("SELECT id, name, born FROM people ORDER BY id")[1] == (2, "Bob", None)


def test_load_twice_is_exactly_once(tmp_path, cli, query, db_url):
    path = write(tmp_path / "a.csv", "x\n1\n2\n")
    cli("load", path, "--into", "t")
    again = json.loads(cli("load", path, "--into", "t", "--json").output)
    assert again["files_loaded"] == 0
    renamed = write(tmp_path / "b.csv", "x\n1\n2\n")
    assert json.loads(cli("load", renamed, "--into", "t", "--json").output)["files_skipped"] == 1
    assert query("SELECT count(*) FROM t")[0][0] == 2


def test_load_merge_with_key_and_type_override(tmp_path, cli, query, db_url):
    write(tmp_path / "p1.csv", "sku,price\nA,1.50\nB,2.00\n")
    cli("load", tmp_path / "p1.csv", "--into", "shop.prices", "--mode", "merge", "--primary-key", "sku",
        "--type", "price=numeric(8,2)")
    write(tmp_path / "p2.csv", "sku,price\nB,2.25\nC,3.00\nC,3.10\n")
    cli("load", tmp_path / "p2.csv", "--into", "shop.prices", "--mode", "merge", "--primary-key", "sku")
    rows = query("SELECT sku, price::text FROM shop.prices ORDER BY sku")
    assert rows == [("A", "1.50"), ("B", "2.25"), ("C", "3.10")]  # the last row of a key wins


def test_load_headerless_and_delimiter(tmp_path, cli, query, db_url):
    write(tmp_path / "h.txt", "1|x\n2|y\n")
    cli("load", tmp_path / "h.txt", "--into", "h", "--no-header", "--delimiter", "|")
    assert query("SELECT f0, f1 FROM h ORDER BY f0") == [(1, "x"), (2, "y")]


def test_load_bad_file_exits_nonzero_with_message(tmp_path, cli, db_url):
    write(tmp_path / "ok.csv", "a,b\n1,2\n")
    cli("load", tmp_path / "ok.csv", "--into", "r")
    write(tmp_path / "bad.csv", "a,b\n3\n")  # no row loads (a good row would load, the ragged one be quarantined)
    result = cli("load", tmp_path / "bad.csv", "--into", "r", expect=1)
    assert "ragged row" in result.output
    missing = cli("load", tmp_path / "nope.csv", "--into", "r", expect=2)
    assert "no such file" in missing.output


def test_load_hostile_names(tmp_path, cli, query, db_url):
    path = write(tmp_path / "we[ird] na*me's; DROP TABLE x.csv", 'a b,"Robert\'); DROP TABLE t;--"\n1,2\n')
    cli("load", path, "--into", 'odd"table')
    assert query('SELECT * FROM "odd""table"') == [(1, 2)]
    assert query("SELECT name FROM chute.files")[0][0] == path.name


def test_merge_into_empty_table_with_keys_repeated_across_blocks(tmp_path, query, db_url):
    """A big file is streamed in blocks; a key repeated in a later block must still merge (last wins)."""
    from chute.run.load_file import load_file

    rows = "".join(f"k{i},{i}\n" for i in range(200_000)) + "k5,last\n"  # ~2.4 MB: several 1 MB blocks
    path = write(tmp_path / "big.csv", "key,value\n" + rows)
    summary = load_file(path, "kv", mode="merge", primary_key=["key"], types=("value=text",), db_url=db_url,
                        folder=tmp_path, batch_mb=0.25)
    assert summary.status == "succeeded", summary.files
    assert query("SELECT count(*) FROM kv")[0][0] == 200_000
    assert query("SELECT value FROM kv WHERE key = 'k5'") == [("last",)]
    assert query("SELECT rows_read, rows_loaded FROM chute.files") == [(200_001, 200_001)]


@pytest.mark.parametrize("tracked", [20_000_000, 10])  # keys hashed to find repeats; or too many: assumed
def test_merge_into_a_loaded_table_with_keys_repeated_across_blocks(tmp_path, query, db_url, monkeypatch, tracked):
    """Into a table that has rows, a merge stages its rows; a key repeated in a later block of a
    streamed file must still leave one row, the last one."""
    from chute.load import unit as loader
    from chute.run.load_file import load_file

    monkeypatch.setattr(loader, "TRACKED_KEYS", tracked)
    load = dict(mode="merge", primary_key=["key"], types=("value=text",), db_url=db_url, folder=tmp_path,
                batch_mb=0.25)
    write(tmp_path / "first.csv", "key,value\nk1,old\nz,kept\n")
    assert load_file(tmp_path / "first.csv", "kv", **load).status == "succeeded"
    rows = "".join(f"k{i},{i}\n" for i in range(200_000)) + "k5,last\n"  # ~2.4 MB: several blocks
    summary = load_file(write(tmp_path / "big.csv", "key,value\n" + rows), "kv", **load)
    assert summary.status == "succeeded", summary.files
    assert query("SELECT count(*) FROM kv")[0][0] == 200_001
    assert query("SELECT key, value FROM kv WHERE key IN ('k1', 'k5', 'z') ORDER BY key") == [
        ("k1", "1"), ("k5", "last"), ("z", "kept")]


PK_OF = ("SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
         "WHERE t.relname = %s AND c.contype = 'p'")


def test_merge_into_empty_table_keeps_its_primary_key(tmp_path, cli, query, db_url):
    """The first load drops and rebuilds the key index; the constraint must be back, same name."""
    write(tmp_path / "p.csv", "sku,price\nA,1\nB,2\n")
    cli("load", tmp_path / "p.csv", "--into", "prices", "--mode", "merge", "--primary-key", "sku")
    assert query(PK_OF, ("prices",)) == [("prices_pkey", "PRIMARY KEY (sku)")]
    write(tmp_path / "q.csv", "sku,price\nA,5\n")
    cli("load", tmp_path / "q.csv", "--into", "prices", "--mode", "merge", "--primary-key", "sku")
    assert query("SELECT sku, price FROM prices ORDER BY sku") == [("A", 5), ("B", 2)]


def test_merge_into_empty_table_referenced_by_a_foreign_key(tmp_path, cli, query, db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE parent (id bigint PRIMARY KEY, name text); "
                     "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent)")
    write(tmp_path / "parent.csv", "id,name\n1,a\n2,b\n")
    cli("load", tmp_path / "parent.csv", "--into", "parent", "--mode", "merge", "--primary-key", "id")
    assert query(PK_OF, ("parent",)) == [("parent_pkey", "PRIMARY KEY (id)")]
    assert query("SELECT count(*) FROM parent") == [(2,)]


def test_an_append_into_an_empty_table_skips_the_wal_and_keeps_its_primary_key(tmp_path, cli, query, db_url):
    """The first rows of an empty table are COPYed into it truncated in the same transaction,
    which (wal_level=minimal, as the embedded cluster runs) writes them without the WAL; its
    primary key is dropped meanwhile and built again at commit."""
    def rows(start):  # ~6 MB of table: past wal_skip_threshold (2 MB), under which the rows are logged anyway
        return "id,v,name\n" + "".join(f"{i},{i * 1.5},name-{i}\n" for i in range(start, start + 100_000))

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, v float8, name text)")
    wal = []
    for n, start in enumerate([0, 100_000]):
        before = query("SELECT pg_current_wal_lsn()")[0][0]
        cli("load", write(tmp_path / f"{n}.csv", rows(start)), "--into", "t")
        wal.append(query("SELECT pg_current_wal_lsn() - %s::pg_lsn", (before,))[0][0])
    assert wal[0] * 5 < wal[1]  # the second load, into rows already there, goes through the WAL
    assert query("SELECT count(*), count(DISTINCT id) FROM t")[0] == (200_000, 200_000)
    assert query("SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'") == [("t_pkey",)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        query("INSERT INTO t VALUES (5, 0, 'again')")


def test_the_rows_of_an_empty_table_are_written_frozen(tmp_path, cli, query, db_url):
    """Rows COPYed into a table the same transaction truncated are frozen (COPY FREEZE): their
    pages are all-visible and all-frozen at commit, with no VACUUM, so the first reader sets no
    hint bits. Rows added to a table that already holds some are written as usual."""
    def rows(start):
        return "id,name\n" + "".join(f"{i},name-{i}\n" for i in range(start, start + 20_000))

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_visibility")
    frozen = ("SELECT all_visible, all_frozen, pg_relation_size('t') / current_setting('block_size')::int"
              " FROM pg_visibility_map_summary('t')")
    cli("load", write(tmp_path / "0.csv", rows(0)), "--into", "t")
    visible, all_frozen, pages = query(frozen)[0]
    assert pages > 10 and visible == all_frozen == pages
    cli("load", write(tmp_path / "1.csv", rows(20_000)), "--into", "t")
    visible, all_frozen, pages = query(frozen)[0]
    assert all_frozen < pages  # the second load's pages
    assert query("SELECT count(*) FROM t")[0][0] == 40_000


def test_a_first_load_under_repeatable_read_is_not_frozen_and_succeeds(tmp_path, cli, query, db_url):
    """PostgreSQL refuses COPY FREEZE in a repeatable read transaction: there the rows are copied as usual."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_visibility")
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET default_transaction_isolation = 'repeatable read'")
    cli("load", write(tmp_path / "0.csv", "id\n" + "".join(f"{i}\n" for i in range(20_000))), "--into", "t")
    assert query("SELECT count(*) FROM t")[0][0] == 20_000
    assert query("SELECT all_frozen FROM pg_visibility_map_summary('t')")[0][0] == 0


def test_a_load_never_imports_pandas(tmp_path, db_url):
    """pyarrow imports pandas, when it is installed, the first time it converts Python values
    (~0.5 s, a fifth of a 2 M-row load): the load path builds its small tables with polars."""
    import subprocess
    import sys

    pytest.importorskip("pandas")
    csv = write(tmp_path / "p.csv", "id,v,day\n1,1.5,2024-01-02\n2,NA,2024/01/03\n")
    probe = ("import sys\nfrom chute.cli.main import main\n"
             f"sys.argv = ['chute', 'load', {str(csv)!r}, '--into', 'no_pandas', '--db', {db_url!r}]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print('pandas imported' if 'pandas' in sys.modules else 'no pandas')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "no pandas"

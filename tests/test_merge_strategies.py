"""The upsert statement sets of merge mode give the same table: new keys inserted, changed
rows updated, unchanged rows left alone (not rewritten)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from chute.load.unit import merge_statements


@pytest.mark.parametrize("strategy", ["insert_update", "merge", "delete_insert"])
def test_merge_strategies_agree(db_url, strategy):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (k int, j text, v int, w text, PRIMARY KEY (k, j))")
        conn.execute("INSERT INTO t VALUES (1, 'a', 10, 'x'), (2, 'a', 20, NULL), (3, 'a', 30, 'z')")
        conn.execute("CREATE TEMP TABLE s (k int, j text, v int, w text)")
        conn.execute("INSERT INTO s VALUES (1, 'a', 10, 'x'), (2, 'a', 21, NULL), (3, 'a', 30, NULL), (4, 'b', 40, 'n')")
        unchanged = conn.execute("SELECT ctid FROM t WHERE k = 1").fetchone()[0]
        with conn.transaction():
            for statement in merge_statements(sql.Identifier("t"), sql.Identifier("s"), ["k", "j", "v", "w"],
                                              ["k", "j"], strategy):
                conn.execute(statement)
        assert conn.execute("SELECT * FROM t ORDER BY k").fetchall() == [
            (1, "a", 10, "x"), (2, "a", 21, None), (3, "a", 30, None), (4, "b", 40, "n")]
        assert conn.execute("SELECT ctid FROM t WHERE k = 1").fetchone()[0] == unchanged  # not rewritten


# -- a merge that stages a large share of the table rewrites it (LoadUnit._rewrite) -------------
def _csv(path, rows) -> str:
    path.write_text("k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    return str(path)


def _merge(cli, db_url, path, table) -> None:
    cli("load", path, "--into", table, "--mode", "merge", "--primary-key", "k", "--db", db_url)


@pytest.fixture
def rewrite_always(monkeypatch):
    import chute.load.unit as loader

    monkeypatch.setattr(loader, "REWRITE_MIN", 1)


FIRST = [(k, f"v{k}") for k in range(1, 11)]
SECOND = [(k, f"new{k}") for k in (1, 2, 3, 4, 5, 11, 12)]
EXPECTED = [(k, f"new{k}") for k in (1, 2, 3, 4, 5)] + [(k, f"v{k}") for k in range(6, 11)] + \
    [(11, "new11"), (12, "new12")]


def _filenode(query, table):
    return query(f"SELECT pg_relation_filenode('{table}')")[0][0]


def test_a_merge_staging_much_of_the_table_rewrites_it_with_the_same_result(tmp_path, cli, db_url, query,
                                                                            rewrite_always):
    _merge(cli, db_url, _csv(tmp_path / "a.csv", FIRST), "m")
    before = _filenode(query, "m")
    _merge(cli, db_url, _csv(tmp_path / "b.csv", SECOND), "m")
    assert query("SELECT k, v FROM m ORDER BY k") == EXPECTED
    assert _filenode(query, "m") != before  # rewritten (a new file), not updated in place
    assert query("SELECT count(*) FROM pg_constraint WHERE conrelid = 'm'::regclass AND contype = 'p'")[0][0] == 1
    with pytest.raises(Exception, match="duplicate key"):
        query("INSERT INTO m VALUES (1, 'again')")  # the rebuilt primary key still holds


def test_a_small_merge_updates_in_place(tmp_path, cli, db_url, query):
    _merge(cli, db_url, _csv(tmp_path / "a.csv", FIRST), "m")
    before = _filenode(query, "m")
    _merge(cli, db_url, _csv(tmp_path / "b.csv", SECOND), "m")  # 7 rows: under REWRITE_MIN
    assert query("SELECT k, v FROM m ORDER BY k") == EXPECTED
    assert _filenode(query, "m") == before


def test_a_table_a_foreign_key_refers_to_is_not_rewritten(tmp_path, cli, db_url, query, rewrite_always):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE parent (k bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO parent SELECT k, 'v' || k FROM generate_series(1, 10) k")
        conn.execute("CREATE TABLE child (k bigint REFERENCES parent)")
        conn.execute("ANALYZE parent")
    before = _filenode(query, "parent")
    _merge(cli, db_url, _csv(tmp_path / "parent.csv", SECOND), "parent")  # TRUNCATE would refuse
    assert query("SELECT k, v FROM parent ORDER BY k") == EXPECTED
    assert _filenode(query, "parent") == before

"""The upsert statement sets of merge mode give the same table: new keys inserted, changed
rows updated, unchanged rows left alone (not rewritten)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from chute.db.loader import merge_statements


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

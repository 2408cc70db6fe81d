"""db/copy.py: Arrow rows into PostgreSQL by binary COPY (pgpq), every column type chute declares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from psycopg import sql

from chute.db.copy import copy_arrow, create_temporary, sql_type
from chute.db.postgres import connect_loader

UTC = dt.timezone.utc
ROWS = pa.table({
    "t": pa.array(["a", "ü, \"q\"\n", None], pa.large_string()),
    "v": pa.array(["x", None, "z"], pa.string_view()),
    "i2": pa.array([1, -2, None], pa.int16()),
    "i4": pa.array([2**31 - 1, None, 0], pa.int32()),
    "i8": pa.array([2**62, None, -1], pa.int64()),
    "f4": pa.array([1.5, None, -0.25], pa.float32()),
    "f8": pa.array([0.1, float("inf"), None], pa.float64()),
    "b": pa.array([True, False, None]),
    "d": pa.array([dt.date(1900, 1, 1), None, dt.date(2024, 2, 29)], pa.date32()),
    "ts": pa.array([dt.datetime(2024, 1, 1, 12, 30, 1, 5), None, dt.datetime(1970, 1, 1)], pa.timestamp("us")),
    "tz": pa.array([dt.datetime(2024, 6, 1, 8, tzinfo=UTC), None, dt.datetime(2000, 1, 1, tzinfo=UTC)],
                   pa.timestamp("us", "UTC")),
    "n": pa.array([Decimal("12.34"), Decimal("-0.01"), None], pa.decimal128(8, 2)),
    "nothing": pa.nulls(3),
})


def test_every_declared_type_round_trips_through_a_temporary_table(db_url):
    conn = connect_loader(db_url)
    try:
        cur = conn.cursor()
        create_temporary(cur, "stage", ROWS.schema)
        copy_arrow(cur, sql.Identifier("stage"), ROWS)
        types = dict(cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                 "WHERE attrelid = 'stage'::regclass AND attnum > 0").fetchall())
        assert types == {"t": "text", "v": "text", "i2": "smallint", "i4": "integer", "i8": "bigint",
                         "f4": "real", "f8": "double precision", "b": "boolean", "d": "date",
                         "ts": "timestamp without time zone", "tz": "timestamp with time zone",
                         "n": "numeric(8,2)", "nothing": "text"}
        cur.execute("SET TIME ZONE 'UTC'")
        got = cur.execute(sql.SQL("SELECT {} FROM stage").format(
            sql.SQL(", ").join(map(sql.Identifier, ROWS.column_names)))).fetchall()
        assert [dict(zip(ROWS.column_names, row)) for row in got] == ROWS.to_pylist()
    finally:
        conn.close()


def test_rows_land_by_column_name_whatever_the_table_order(db_url):
    conn = connect_loader(db_url)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE target (b text, a bigint, extra text DEFAULT 'kept')")
        copy_arrow(cur, sql.Identifier("target"), pa.table({"a": [1, 2], "b": ["x", "y"]}))
        conn.commit()
        assert cur.execute("SELECT a, b, extra FROM target ORDER BY a").fetchall() == [(1, "x", "kept"),
                                                                                        (2, "y", "kept")]
    finally:
        conn.close()


def test_a_type_with_no_column_type_is_refused_by_name():
    with pytest.raises(TypeError, match="duration"):
        sql_type(pa.duration("s"))


# -- a load unit's COPY, left open across frames (load/unit.py, db/copy.py: CopyStream) -------------
def _unit_and_target(db_url, table: str = "t", mode: str = "append", ddl: str = "k bigint NOT NULL, v text"):
    import psycopg

    from chute.coltypes import parse_type
    from chute.db.target import Target
    from chute.load.unit import LoadUnit

    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({ddl})")
    conn = connect_loader(db_url)
    target = Target("public", table, mode, {"k": parse_type("bigint"), "v": parse_type("text")}, [])
    return conn, LoadUnit(conn, "p", 0), target


def _copies(monkeypatch) -> list[str]:
    """The tables each COPY statement opened from now on went into."""
    import chute.db.copy

    opened: list[str] = []
    original = chute.db.copy.CopyStream.__init__

    def counting(self, cur, into, schema, freeze=False):
        opened.append(into.as_string(cur.connection))
        original(self, cur, into, schema, freeze)

    monkeypatch.setattr(chute.db.copy.CopyStream, "__init__", counting)
    return opened


def test_the_frames_a_unit_writes_to_one_table_go_in_one_copy(db_url, monkeypatch):
    import polars as pl
    import psycopg

    opened = _copies(monkeypatch)
    conn, unit, target = _unit_and_target(db_url)
    try:
        for start in range(0, 300, 100):  # three blocks of one big file
            unit.write(target, pl.DataFrame({"k": range(start, start + 100), "v": ["x"] * 100}))
        assert len(opened) == 1  # the server never waits for one COPY to end and the next to start
        unit.reject(pa.table({"x": [1]}))  # any other statement ends the COPY first...
        unit.write(target, pl.DataFrame({"k": [300], "v": ["y"]}))
        assert len(opened) == 3  # ...the stage's own COPY, then a new one for the next rows
        unit.end_copy()
        unit.rollback()
    finally:
        conn.close()
    with psycopg.connect(db_url) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # rolled back: nothing


def test_rows_a_kept_copy_could_not_take_fail_the_unit_with_the_tables_name(db_url):
    import polars as pl
    import psycopg

    from chute.errors import DatabaseError
    from chute.ledger.files import LedgerRow

    conn, unit, target = _unit_and_target(db_url)
    try:
        unit.write(target, pl.DataFrame({"k": [1, 2], "v": ["a", "b"]}))
        unit.write(target, pl.DataFrame({"k": [None, 4], "v": ["c", "d"]}, schema={"k": pl.Int64, "v": pl.String}))
        with pytest.raises(DatabaseError, match=r"loading into public\.t failed: .*not-null constraint"):
            unit.commit(list[LedgerRow]())  # the server's error comes when the COPY ends
        unit.rollback()
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # the connection works on
    finally:
        conn.close()
    with psycopg.connect(db_url) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_frames_of_another_type_or_table_open_a_new_copy(db_url, monkeypatch):
    import polars as pl

    import dataclasses

    import psycopg

    opened = _copies(monkeypatch)
    conn, unit, target = _unit_and_target(db_url)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS u; CREATE TABLE u (k bigint, v text)")
    other = dataclasses.replace(target, table="u")
    try:
        unit.write(target, pl.DataFrame({"k": [1], "v": ["a"]}))
        unit.write(other, pl.DataFrame({"k": [2], "v": ["b"]}))
        unit.write(target, pl.DataFrame({"k": [3]}))  # no v: another Arrow schema, another statement
        unit.write(target, pl.DataFrame({"k": [4]}))
        unit.end_copy()
        assert [o.split(".")[-1].strip('"') for o in opened] == ["t", "u", "t"]
        assert conn.execute("SELECT array_agg(k ORDER BY k) FROM t").fetchone()[0] == [1, 3, 4]
        unit.rollback()
    finally:
        conn.close()


def test_merge_frames_are_staged_in_one_copy_and_merged_at_commit(db_url, monkeypatch):
    import dataclasses

    import polars as pl
    import psycopg

    opened = _copies(monkeypatch)
    conn, unit, target = _unit_and_target(db_url, mode="merge", ddl="k bigint PRIMARY KEY, v text")
    target = dataclasses.replace(target, primary_key=["k"])
    conn.execute("INSERT INTO t VALUES (0, 'old'), (1, 'old')")
    conn.commit()
    try:
        for start in range(0, 300, 100):  # a table that holds rows: merged through a stage
            unit.write(target, pl.DataFrame({"k": range(start, start + 100), "v": ["new"] * 100}))
        assert [o.split(".")[-1].strip('"') for o in opened] == ["chute_stage_public_t"]
        unit._merge(target)  # what commit() does first (the ledger rows after it are tested with the runner)
        assert unit.cur.execute("SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM t").fetchone() == (300, 300)
        unit.rollback()
    finally:
        conn.close()
    with psycopg.connect(db_url) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 2  # rolled back: as it was


def test_a_unit_whose_connection_breaks_mid_copy_rolls_back_without_hanging(db_url):
    """psycopg holds the connection's lock while a COPY is open: a unit must end the COPY
    (CopyFail, or closing it on a broken connection) before anything else, or it would wait
    on that lock for ever."""
    import threading

    import polars as pl
    import psycopg

    from chute.errors import DatabaseError

    conn, unit, target = _unit_and_target(db_url)
    try:
        unit.write(target, pl.DataFrame({"k": [1], "v": ["a"]}))  # the COPY is open
        pid = conn.info.backend_pid
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DatabaseError, match="loading into public.t failed"):
            for _ in range(200):  # until the client notices the server is gone
                unit.write(target, pl.DataFrame({"k": range(10_000), "v": ["x" * 100] * 10_000}))
        done = threading.Thread(target=unit.rollback, daemon=True)
        done.start()
        done.join(10)
        assert not done.is_alive(), "rollback hung on the connection's lock"
    finally:
        conn.close()

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

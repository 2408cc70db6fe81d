"""Pages of a PostgreSQL source read straight into Arrow by ADBC's PostgreSQL driver.

The generic path (database.py) fetches a page as Python objects, one per value, and builds
Arrow arrays from them: ~85% of an extraction's time went there (py-spy of
benchmarks/bench_extract.py). ADBC reads a query's rows by binary COPY into Arrow, in C++.
The page query is still built by SQLAlchemy; psycopg renders its values as literals (ADBC
takes $n parameters, and COPY, which it uses for a query with none, takes no parameters).

A source with a column of a type not in COVERED (real, interval, arrays, enums...) is
read the generic way, as is any page this module cannot convert exactly (an infinite date, a
NaN numeric): `page` returns None and database.py fetches that page itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from chute.extract.arrow_rows import to_array

# Source types whose Arrow type from ADBC is the one the generic path makes (smallint and
# integer widened to int64, as Python's int gives them). Not real: ADBC reads it as float32,
# whose 0.1 is 0.10000000149 as a double, where the row path has the server's text, 0.1.
PLAIN = {"int2", "int4", "int8", "float8", "bool", "text", "varchar", "bpchar", "name", "date", "time",
         "timestamp", "timestamptz", "bytea"}
# ADBC gives these as extension types (numeric and json as text, uuid as 16 bytes); their
# values as psycopg returns them, for watermarks and for arrow_rows to type as the row path.
AS_DRIVER = {"numeric": decimal.Decimal, "json": json.loads, "jsonb": json.loads, "uuid": lambda b: uuid.UUID(bytes=b)}
COVERED = PLAIN | AS_DRIVER.keys()
# Dates and times the generic path (Python's datetime) can hold; ADBC wraps PostgreSQL's
# 'infinity' around to a nonsense date instead of failing.
_FIRST_DAY, _LAST_DAY = ((d - dt.date(1970, 1, 1)).days for d in (dt.date(1, 1, 1), dt.date(9999, 12, 31)))


def open_pages(url, dialect, driver_connection) -> Pages | None:
    """Pages of the SQLAlchemy `url`'s database read by ADBC, or None: the driver is absent or
    cannot connect where psycopg could (the row path then reads every page)."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        return None
    uri = url.set(drivername="postgresql", query={"connect_timeout": "10", **url.query})
    try:
        conn = adbc.connect(uri.render_as_string(hide_password=False), autocommit=True)  # a transaction per page
    except Exception:
        return None
    try:
        with conn.cursor() as cur:
            # As the row path's session (database.py: _engine): timestamptz shown and cast in
            # UTC; and the SQL goes as UTF-8 whatever the database's encoding.
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SET client_encoding = 'UTF8'")
    except Exception:
        conn.close()
        return None
    return Pages(conn, dialect, driver_connection)


class Pages:
    """Reads pages of one source; `usable` turns False when a column's type is not covered."""

    def __init__(self, conn, dialect, driver_connection):
        self.conn = conn
        self.dialect = dialect
        self.cursor = psycopg.ClientCursor(driver_connection)  # renders values as literals; runs nothing
        self.usable = True

    def sql(self, statement) -> str:
        """The statement's SQL with its values as literals, quoted by psycopg."""
        compiled = statement.compile(dialect=self.dialect)
        return self.cursor.mogrify(str(compiled), compiled.params)

    def page(self, statement, types: dict[str, pa.DataType]) -> tuple[pa.Table, pa.Table] | None:
        """(the page as the generic path would make it, the page as ADBC read it), or None:
        fetch this page the generic way. `types` is shared with the generic path, so a column
        keeps one type across pages whichever way they were read."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(self.sql(statement))
                raw = cur.fetch_arrow_table()
        except Exception:  # the generic path runs the page again and reports what the server says
            self.usable = False
            return None
        kinds = [_kind(f) for f in raw.schema]
        if not all(k in COVERED for k in kinds):
            self.usable = False
            return None
        columns = []
        for name, kind, column in zip(raw.column_names, kinds, raw.columns):
            column = _converted(kind, column, name, types)
            if column is None:
                return None
            if column.null_count < len(column):  # a column of NULLs only says nothing of its type
                types.setdefault(name, column.type)
            if name in types and column.type != types[name]:
                try:
                    column = column.cast(types[name])
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    return None
            columns.append(column)
        return pa.Table.from_arrays(columns, names=raw.column_names), raw

    def close(self) -> None:
        self.conn.close()


def value(raw: pa.Table, column: int, row: int) -> Any:
    """One value of the page as ADBC read it, as the generic path's driver returns it (a
    watermark is bound back into the next query, so it must be the source's own value)."""
    field = raw.schema.field(column)
    item = raw.column(column)[row]
    kind = _kind(field)
    if isinstance(item, pa.ExtensionScalar):
        item = item.value
    if item is None or not item.is_valid:
        return None
    return AS_DRIVER.get(kind, lambda v: v)(item.as_py())


def _kind(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()


def _converted(kind: str, column: pa.ChunkedArray, name: str, types: dict[str, pa.DataType]
               ) -> pa.ChunkedArray | pa.Array | None:
    if isinstance(column.type, pa.BaseExtensionType):
        column = pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
    if kind in ("date", "timestamp", "timestamptz") and not _in_range(column):
        return None
    if kind == "numeric":
        known = types.get(name)
        return column if known == pa.string() else _decimal(column, known)  # text once a page was NaN
    if kind in AS_DRIVER:  # few such columns: their values go the generic path's way, one by one
        decode = AS_DRIVER[kind]
        return to_array([None if v is None else decode(v) for v in column.to_pylist()], name, types)
    if kind in ("int2", "int4"):
        return column.cast(pa.int64())
    return column


def _in_range(column: pa.ChunkedArray) -> bool:
    if column.null_count == len(column):
        return True
    if pa.types.is_timestamp(column.type):
        per_day = 86_400 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[column.type.unit]
        low, high = pc.min_max(column.cast(pa.int64())).values()
    else:
        per_day = 1
        low, high = pc.min_max(column.cast(pa.int32())).values()
    return _FIRST_DAY * per_day <= low.as_py() and high.as_py() < (_LAST_DAY + 1) * per_day


def _decimal(text: pa.ChunkedArray, known: pa.DataType | None) -> pa.ChunkedArray | None:
    """numeric's text as decimal128(38, scale), the type the generic path gives it: the scale
    of earlier pages, else the most digits after the point in this page. None for values no
    decimal128 holds (NaN, infinity, more than 38 digits)."""
    if known is not None and pa.types.is_decimal128(known):
        target = known
    else:
        fraction = pc.utf8_length(pc.replace_substring_regex(text, r"^[^.]*\.?", ""))
        scale = pc.max(fraction).as_py() or 0
        if scale > 38:
            return None
        target = pa.decimal128(38, scale)
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None

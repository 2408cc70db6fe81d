"""Arrow -> PostgreSQL binary COPY: pgpq encodes the record batches, psycopg sends them.

Measured on 2 M rows x 9 columns here (docs/benchmarks.md, fifth session): the server takes
~1.2 s to take in the binary COPY whoever sends it. ADBC's ingest spent ~1.1 s of client CPU
encoding, which on two cores left the CSV parser and the server fighting for the other one;
pgpq encodes the same rows in ~0.25 s. Binary COPY carries no type information, so the
Arrow types must be the exact binary form of the columns they land in: chute casts frames to
the declared types first (coltypes.py).
"""

from __future__ import annotations

import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import Cursor, sql

# Rows per encoded batch: big enough that per-call overhead vanishes, small enough that the
# server starts on the first rows while the client encodes the next (~6 MB of COPY data).
COPY_BATCH_ROWS = 65_536


def copy_arrow(cur: Cursor, into: sql.Composable, data: pa.Table, freeze: bool = False) -> None:
    """COPY the rows of `data` into table `into`, by column name. `freeze`: the rows are
    written frozen (the table must be new or truncated in this transaction, see LoadUnit)."""
    data = encodable(data)
    stream = CopyStream(cur, into, data.schema, freeze)
    try:
        stream.write(data)
    except BaseException as exc:
        stream.abort(exc)
        raise
    stream.close()


class CopyStream:
    """One COPY ... FROM STDIN (FORMAT binary) left open while tables of the same schema come:
    a load unit sends every block of a big file into one statement. With a COPY per block the
    server sat idle at each block's end, while the client waited for the COPY to finish and
    then cast and encoded the next block's first rows (issue 27's profile).

    While it is open the connection takes no other command (psycopg holds its lock): the
    owner closes it first (LoadUnit does so before any statement)."""

    def __init__(self, cur: Cursor, into: sql.Composable, schema: pa.Schema, freeze: bool = False):
        self.into, self.schema, self.freeze = into, schema, freeze
        self.encoder = ArrowToPostgresBinaryEncoder(schema)
        columns = sql.SQL(", ").join(map(sql.Identifier, schema.names))
        options = sql.SQL("FORMAT binary, FREEZE" if freeze else "FORMAT binary")
        self._context = cur.copy(sql.SQL("COPY {} ({}) FROM STDIN ({})").format(into, columns, options))
        self._copy = self._context.__enter__()
        try:
            self._copy.write(self.encoder.write_header())
        except BaseException as exc:  # nobody holds this stream yet: end the COPY (and its lock) here
            self.abort(exc)
            raise

    def takes(self, into: sql.Composable, schema: pa.Schema, freeze: bool) -> bool:
        """Whether rows of `schema` for `into` can go into this COPY."""
        return into == self.into and freeze == self.freeze and schema.equals(self.schema)

    def write(self, data: pa.Table) -> None:
        """Rows of this stream's schema (`encodable` already applied)."""
        for batch in data.to_batches(max_chunksize=COPY_BATCH_ROWS):
            self._copy.write(self.encoder.write_batch(batch))

    def close(self) -> None:
        """End the COPY: the server's error, if the rows broke a constraint, is raised here."""
        try:
            self._copy.write(self.encoder.finish())
        except BaseException as exc:  # the connection broke: end the COPY (and its lock) all the same
            self.abort(exc)
            raise
        self._context.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        """End the COPY with CopyFail (the transaction is then aborted; the caller rolls back)."""
        try:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:  # psycopg raises the failure it was given, or the server's error
            pass


def create_temporary(cur: Cursor, name: str, schema: pa.Schema) -> None:
    """A temporary table (if not there yet) with a column of the matching type per Arrow field."""
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(sql_type(f.type)))
                                 for f in schema)
    cur.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({})").format(sql.Identifier(name), columns))


def sql_type(t: pa.DataType) -> str:
    """The PostgreSQL type whose binary form pgpq writes for Arrow type `t`."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return "text"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_time(t):
        return "time"
    simple = {pa.bool_(): "boolean", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
              pa.float32(): "real", pa.float64(): "double precision", pa.date32(): "date",
              pa.binary(): "bytea", pa.large_binary(): "bytea"}
    if t in simple:
        return simple[t]
    raise TypeError(f"no PostgreSQL column type for Arrow type {t}")


def encodable(data: pa.Table) -> pa.Table:
    """pgpq has no encoder for Arrow's null type (a column with no value at all): send text NULLs;
    nor for nanosecond times (polars' pl.Time): PostgreSQL's time holds microseconds."""
    for i, field in enumerate(data.schema):
        if pa.types.is_null(field.type):
            data = data.set_column(i, field.with_type(pa.string()), data.column(i).cast(pa.string()))
        elif pa.types.is_time(field.type) and field.type != pa.time64("us"):
            data = data.set_column(i, field.with_type(pa.time64("us")), data.column(i).cast(pa.time64("us")))
    return data

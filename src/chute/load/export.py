"""A table's export file (`[tables.NAME] export = "processed/x.csv"`), rewritten after a run
that loaded rows: every row of the table, ordered by its primary key (a table with none: by
its first column), as PostgreSQL's `COPY (SELECT * FROM t ORDER BY key) TO STDOUT (FORMAT csv,
HEADER)` writes it.

The server needs ~2 s to format 2 M rows as CSV. When the run itself wrote every row the table
holds (a first load), the rows are still in memory: `ExportRows` holds them and `postgres_csv` writes
them byte for byte as the server would (tests/test_export.py compares the two on real
PostgreSQL), so the file is the same whichever way it was made. A thread formats each batch
of rows as soon as its unit has written it, while the server is still loading; the file
replaces the export only if, after the last commit, the table holds exactly those rows.
"""

from __future__ import annotations

import io
import itertools
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from chute.db.postgres import qualified
from chute.ledger.files import LedgerRow

KEPT_BYTES = 512 << 20  # rows kept in memory per run for exports; past this they are let go
# Rows already appended to the file, in key order, still kept in case a later unit breaks the
# order (then the file is written again, sorted, from memory). Past this they are let go, and
# a later break sends the export to the table: the stocks example's 2 M rows (~200 MB) are
# written in order, and keeping them all raised the run's peak memory by that much.
KEPT_APPENDED_BYTES = 64 << 20
_LOCK = 0x63687565  # advisory lock: one export per pipeline at a time
# Collations (and database locales) that order text by code point, as polars sorts it.
_CODE_POINT_ORDER = ["C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"]
_SORTABLE = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Date, pl.String)  # key types polars orders as PostgreSQL
SLICE_ROWS = 131_072  # rows formatted at a time: bounds the memory of the text


class ExportRows:
    """Commit hook (commit_hooks.py): the rows each committed unit wrote to the tables that have
    an export, with the unit's transaction id, so `write_export` can tell whether the table
    holds exactly these rows. A thread (`_Writing`) formats them into the file as they come."""

    def __init__(self, exports: dict[str, tuple[list[str], Path]], limit: int = KEPT_BYTES,
                 appended_limit: int = KEPT_APPENDED_BYTES):
        self.exports = exports  # {table: (primary key, export path)}
        self.frames: dict[str, list[_Kept] | None] = {t: [] for t in exports}
        self.pending: dict[str, list[_Kept]] = {t: [] for t in exports}
        self.xids: list[int] = []
        self.limit = limit
        self.appended_limit = appended_limit
        self.bytes = 0
        self.writers: dict[str, _Writing] = {}

    def rows(self, table: str, frame: pl.DataFrame) -> None:
        if self.frames.get(table) is None:
            return
        kept = _Kept(frame)
        self.pending[table].append(kept)
        self.bytes += kept.size
        if self.bytes > self.limit:  # too big to keep: the export is read from the table
            self.close()
            self.frames = dict.fromkeys(self.frames)
            self.reset()
            return
        if table not in self.writers:
            self.writers[table] = _Writing(*self.exports[table], self.appended_limit)
        self.writers[table].add(kept)

    def statements(self, files: list[LedgerRow]) -> list[tuple[str, tuple]]:
        return []

    def committed(self, xid: int) -> None:
        self.xids.append(xid)
        for table, frames in self.pending.items():
            if self.frames[table] is not None:
                self.frames[table].extend(frames)
        self.reset()

    def reset(self) -> None:
        self.bytes = sum(k.size for kept in self.frames.values() if kept for k in kept)
        self.pending = {t: [] for t in self.pending}

    def writing(self, table: str, key: list[str], path: Path) -> _Writing | None:
        """The write of `table`'s export from the rows committed so far (the one under way when
        it holds exactly these). None when there are none, or polars cannot order them as
        PostgreSQL does."""
        frames = self.frames.get(table) if self.xids else None
        usable = bool(frames) and _sortable([k.schema for k in frames], key)
        writer = self.writers.pop(table, None)
        if writer and not (usable and (writer.key, writer.path) == (key, path)):
            writer.cancel()
            writer = None
        if not usable:
            return None
        writer = writer or _Writing(key, path, self.appended_limit)
        writer.finish(frames)
        return writer

    def close(self) -> None:
        """Stop the writes nobody took (the run ended before its exports)."""
        for writer in self.writers.values():
            writer.cancel()
        self.writers = {}


def first_loads(conn: psycopg.Connection, tables: dict) -> set[str]:
    """The tables with an export whose rows this run may write all of: empty as it begins, or
    replaced by it. Only their rows are kept (a table that already holds rows is exported from
    the table, and keeping this run's rows would only cost memory)."""
    found = set()
    for name, table in tables.items():
        if table.export and (table.mode == "replace" or not conn.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(qualified(table.schema_, name))).fetchone()[0]):
            found.add(name)
    return found


def write_export(conn: psycopg.Connection, pipeline: str, schema: str, table: str, key: list[str], path: Path,
                 kept: ExportRows | None) -> str:
    """Rewrite `path` from the table, or from `kept` rows when they are all the table holds.
    Returns how: "memory" or "table"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path)
    writing = kept.writing(table, key, path) if kept else None
    try:
        # Workers export one at a time, each after the loads committed before it started, so
        # the file left last holds every row.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, pipeline))
            if writing is not None:
                # The server checks that these are the table's rows (the client may still be writing them).
                if _table_holds(conn, schema, table, writing.columns, writing.height, kept.xids) \
                        and writing.done.result():
                    writing.partial.replace(path)  # readers never see a half-written file
                    return "memory"
                writing.cancel()
            with conn.cursor().copy(_export_query(schema, table, key)) as copy:
                _write(partial, copy)
            partial.replace(path)
            return "table"
    finally:
        if writing is not None:
            writing.cancel()
        partial.unlink(missing_ok=True)


def _export_query(schema: str, table: str, key: list[str]) -> sql.Composed:
    order = sql.SQL(", ").join(map(sql.Identifier, key)) if key else sql.SQL("1")
    return sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)").format(
        qualified(schema, table), order)


def export_to(conn: psycopg.Connection, pipeline: str, schema: str, table: str, key: list[str], out) -> None:
    """The table's export (the same CSV, in the same order, as write_export's) into `out`, any
    binary writer (the AWS load writes it to S3 in parts): block by block, never whole in memory."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, pipeline))
        with conn.cursor().copy(_export_query(schema, table, key)) as copy:
            _write_to(out, copy)


def _partial(path: Path, writer: int = 0) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{writer}.partial")


def _write(path: Path, chunks, stop: threading.Event | None = None) -> bool:
    """Write the chunks to `path`; False if `stop` was set before the last one."""
    with path.open("wb") as out:
        return _write_to(out, chunks, stop)


def _write_to(out, chunks, stop: threading.Event | None = None) -> bool:
    for chunk in chunks:
        if stop is not None and stop.is_set():
            return False
        out.write(chunk)
    return True


def _sortable(schemas: list[pl.Schema], key: list[str]) -> bool:
    """Whether polars orders rows of these schemas by `key` as PostgreSQL does, and they agree on columns."""
    types = schemas[0]
    key = _order(key, types)
    return bool(key) and all(s == types for s in schemas) and all(types.get(k) in _SORTABLE for k in key)


def _order(key: list[str], schema: pl.Schema) -> list[str]:
    """The columns the export is sorted by: the primary key, or with none the first column
    (`ORDER BY 1`, _export_query). Rows with the same first value: in the order they were
    loaded here, in an order PostgreSQL chooses from the table; either is `ORDER BY 1`."""
    return key or list(schema)[:1]


class _Kept:
    """A unit's rows for an export. The writer lets the frame go (None) once it is in the file,
    in key order, past `KEPT_APPENDED_BYTES`; its schema, height and size stay."""

    __slots__ = ("frame", "schema", "height", "size")

    def __init__(self, frame: pl.DataFrame):
        self.frame: pl.DataFrame | None = frame
        self.schema, self.height, self.size = frame.schema, frame.height, frame.estimated_size()


_WRITERS = itertools.count(1)  # each writer its own .partial file


class _Writing:
    """A thread writing kept rows, in key order, to the export's .partial file.

    Frames are added as their unit writes them (`add`). While each one, sorted, starts at or
    after the key where the one before ended (files landing in key order, like one stock file
    per ticker), it is appended at once: most of the file is written while the server is still
    loading. `finish` names the rows the file must hold; unless they are exactly the frames
    appended (a unit rolled back, or the keys went back), the file is written again from them,
    sorted as a whole. Appended frames past `appended_limit` bytes are let go; if the file must
    then be written again, it is not. `done` tells whether the file holds them all (False:
    postgres_csv cannot write these values, rows were let go, or cancelled)."""

    def __init__(self, key: list[str], path: Path, appended_limit: int = KEPT_APPENDED_BYTES):
        self.key, self.path, self.partial = key, path, _partial(path, next(_WRITERS))
        self.appended_limit = appended_limit
        self.columns: list[str] = []
        self.height = 0
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.stop = threading.Event()
        self.done: Future[bool] = Future()
        threading.Thread(target=self._run, name="chute-export", daemon=True).start()

    def add(self, kept: _Kept) -> None:
        self.queue.put(kept)

    def finish(self, frames: list[_Kept]) -> None:
        self.columns, self.height = list(frames[0].schema), sum(k.height for k in frames)
        self.queue.put(list(frames))

    def cancel(self) -> None:
        """Stop (within a slice of rows) and remove the partial file (gone already if it was taken)."""
        self.stop.set()
        self.queue.put(None)
        try:
            self.done.result()
        except Exception:  # a write that failed is not needed any more
            pass
        self.partial.unlink(missing_ok=True)

    def _run(self) -> None:
        try:
            self.done.set_result(self._write())
        except BaseException as exc:
            self.done.set_exception(exc)

    def _write(self) -> bool:
        appended: list[_Kept] = []
        ordered, last, held = True, (), 0  # () sorts before every key
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        with self.partial.open("wb") as out:
            while (item := self.queue.get()) is not None and not self.stop.is_set():
                if isinstance(item, list):  # finish: the rows the file must hold
                    if ordered and len(item) == len(appended) and all(a is b for a, b in zip(item, appended)):
                        return True
                    break
                if ordered and item.frame is not None:
                    last = self._append(out, item.frame, last)
                    ordered = last is not None
                    appended.append(item)
                    held += item.size
                    if ordered and held > self.appended_limit:  # in the file already: let them go
                        for kept in appended:
                            kept.frame = None
                        held = 0
            else:
                return False
        if any(k.frame is None for k in item):  # let go: the export is read from the table
            return False
        rows = pl.concat([k.frame for k in item], rechunk=False)
        if postgres_csv_unsupported(rows):
            return False
        return _write(self.partial, _sorted_csv(rows, _order(self.key, rows.schema)), self.stop)

    def _append(self, out, frame: pl.DataFrame, last: tuple) -> tuple | None:
        """Append the frame's rows, sorted, if they start at or after `last`. Returns the key the
        file now ends at; None when they were not appended (nor will any more be)."""
        if not _sortable([frame.schema], self.key) or postgres_csv_unsupported(frame):
            return None
        if frame.height:
            order = _order(self.key, frame.schema)
            frame = frame.sort(order, maintain_order=True)
            ends = frame.select(order)
            first = ends.row(0)
            if any(ends.null_count().row(0)) or first < last:
                return None
            last = ends.row(-1)
        chunks = postgres_csv(frame)
        if out.tell():
            next(chunks)  # the header is written once
        return last if _write_to(out, chunks, self.stop) else None


def _sorted_csv(rows: pl.DataFrame, order: list[str]) -> Iterator[bytes | memoryview]:
    """postgres_csv of `rows` sorted by `order`, NULLs last as PostgreSQL's ascending ORDER BY
    puts them (a key column has none; a first column may). A slice is gathered at a time: a
    sorted copy of all the rows would hold as much memory again as the rows themselves."""
    index = rows.select(pl.arg_sort_by(order, maintain_order=True, nulls_last=True)).to_series()
    if not rows.height:
        yield from postgres_csv(rows)
    for start in range(0, rows.height, SLICE_ROWS):
        chunks = postgres_csv(rows.select(pl.all().gather(index.slice(start, SLICE_ROWS))))
        header = next(chunks)
        if not start:
            yield header
        yield from chunks


def _table_holds(conn: psycopg.Connection, schema: str, table: str, columns: list[str], height: int,
                 xids: list[int]) -> bool:
    """Whether the table holds exactly the kept rows (`height` of them in `columns`, written by
    the transactions `xids`, and no other row), with text keys ordered by code point as polars does."""
    found = conn.execute(
        "SELECT array_agg(a.attname::text ORDER BY a.attnum),"
        " bool_and(a.attcollation = 0 OR c.collname = ANY(%(order)s)"
        "          OR (c.collname = 'default' AND d.datcollate = ANY(%(order)s)))"
        " FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation"
        " CROSS JOIN (SELECT datcollate FROM pg_database WHERE datname = current_database()) d"
        " WHERE a.attrelid = format('%%I.%%I', %(schema)s::text, %(table)s::text)::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped", {"order": _CODE_POINT_ORDER, "schema": schema, "table": table}).fetchone()
    if not found or found[0] != columns or not found[1]:
        return False
    count, foreign = conn.execute(
        # xid against xid: a third of the time of turning each row's xmin into a number
        sql.SQL("SELECT count(*), count(*) FILTER (WHERE NOT xmin = ANY(%s::text[]::xid[])) FROM {}").format(
            qualified(schema, table)), ([str(x % (1 << 32)) for x in xids],)).fetchone()
    return not foreign and count == height


# -- PostgreSQL's CSV text ---------------------------------------------------------------------
def postgres_csv_unsupported(frame: pl.DataFrame) -> list[str]:
    """Columns whose text postgres_csv cannot reproduce (the server writes those files): other
    types; dates PostgreSQL writes otherwise (BC, years past 9999); doubles of 2^53 or more,
    where PostgreSQL's float8out may print a digit more than the shortest form polars prints
    (its Ryu never takes a representation on the rounding boundary); and the text \\. in a
    table of one column, which PostgreSQL quotes there."""
    bad = [c for c, t in frame.schema.items() if t not in _WRITABLE]
    if frame.width == 1 and frame.dtypes[0] == pl.String and (frame.to_series() == "\\.").any():
        bad.append(frame.columns[0])
    checks = {c: pl.col(c).dt.year().is_between(1, 9999) for c, t in frame.schema.items() if t == pl.Date}
    checks |= {c: (pl.col(c).abs() < 2.0 ** 53) | ~pl.col(c).is_finite()
               for c, t in frame.schema.items() if t == pl.Float64}
    if checks and frame.height:
        ok = frame.select([check.or_(pl.col(c).is_null()).all().alias(c) for c, check in checks.items()]).row(0)
        bad += [c for c, fine in zip(checks, ok) if not fine]
    return bad


def postgres_csv(frame: pl.DataFrame) -> Iterator[bytes | memoryview]:
    """The frame as COPY ... TO (FORMAT csv, HEADER) writes it: a header line, then one line
    per row; NULL as nothing, text quoted only where it must be (and "" for an empty string).

    Integers, dates and text polars writes as PostgreSQL does; doubles and booleans are
    turned into PostgreSQL's text first (all columns of a slice in one polars call)."""
    single = frame.width == 1
    yield (",".join(_quoted(c, single) for c in frame.columns).encode() + b"\n")
    texts = [_text(c, t) for c, t in frame.schema.items()]
    doubles = [c for c, t in frame.schema.items() if t == pl.Float64]
    # Only text can need quotes; a slice whose text needs none is written without looking (a fifth less CPU).
    quoted = pl.any_horizontal([(pl.col(c) == "") | pl.col(c).str.contains_any([",", '"', "\n", "\r"])
                                for c, t in frame.schema.items() if t == pl.String] or [pl.lit(False)]).any()
    for start in range(0, frame.height, SLICE_ROWS):
        part = frame.slice(start, SLICE_ROWS)
        # Doubles polars lays out otherwise than float8out (tiny, huge, infinite): the few rows are mended
        odd = part.select([_odd(c).any().alias(c) for c in doubles]).row(0) if doubles else ()
        lines = part.select(texts)
        for c in (c for c, found in zip(doubles, odd) if found):
            where = part.select(_odd(c).arg_true()).to_series()
            mended = _float8_scientific(part.get_column(c).gather(where))
            lines = lines.with_columns(lines.get_column(c).scatter(where, mended))
        out = io.BytesIO()
        quotes = "necessary" if part.select(quoted).item() else "never"
        lines.write_csv(out, include_header=False, quote_style=quotes, null_value="")
        yield out.getbuffer()


def _quoted(value: str, single: bool) -> str:
    if value == "" or any(ch in value for ch in ',"\n\r') or (single and value == "\\."):
        return '"' + value.replace('"', '""') + '"'
    return value


def _text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as polars must be given it to write PostgreSQL's text."""
    column = pl.col(name)
    if dtype == pl.Boolean:
        return pl.when(column).then(pl.lit("t")).when(~column).then(pl.lit("f")).alias(name)
    if dtype == pl.Float64:
        # float8out with extra_float_digits = 1 (the default since PostgreSQL 12): the shortest
        # digits that read back as the same double, which polars prints too; plain when the
        # decimal exponent is in -4..14, as polars writes them but for the ".0" of whole numbers.
        return column.cast(pl.String).str.strip_suffix(".0")
    return column


def _odd(name: str) -> pl.Expr:
    """Doubles outside the plain range (1e-4 <= |x| < 1e15), zero aside: NaN and the infinities too."""
    size = pl.col(name).abs()
    return (~((size >= 1e-4) & (size < 1e15)) & (pl.col(name) != 0)).fill_null(False)


def _float8_scientific(s: pl.Series) -> pl.Series:
    """float8out of the values _odd picks: d.ddde+XX, NaN, +-Infinity."""
    v, text = pl.col("v"), pl.col("v").cast(pl.String)
    parts = text.str.extract_groups(r"^-?(\d+)(?:\.(\d*))?(?:e([+-]?\d+))?$")  # polars: plain or d.dde-7
    whole = parts.struct[0]
    all_digits = whole + parts.struct[1].fill_null("")
    leading = all_digits.str.len_chars() - all_digits.str.strip_chars_start("0").str.len_chars()
    digits = all_digits.str.strip_chars("0")
    exp = parts.struct[2].cast(pl.Int32).fill_null(0) + whole.str.len_chars().cast(pl.Int32) - 1 \
        - leading.cast(pl.Int32)
    rest = digits.str.slice(1)
    number = pl.when(v < 0).then(pl.lit("-")).otherwise(pl.lit("")) + digits.str.slice(0, 1) \
        + pl.when(rest == "").then(pl.lit("")).otherwise(pl.lit(".") + rest) \
        + pl.when(exp < 0).then(pl.lit("e-")).otherwise(pl.lit("e+")) + exp.abs().cast(pl.String).str.zfill(2)
    return s.alias("v").to_frame().select(
        pl.when(v.is_nan()).then(pl.lit("NaN"))
        .when(v == float("inf")).then(pl.lit("Infinity"))
        .when(v == float("-inf")).then(pl.lit("-Infinity"))
        .otherwise(number)).to_series()


# Polars writes these as PostgreSQL does; doubles and booleans once _text has turned them into text.
_WRITABLE = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Date, pl.String, pl.Float64, pl.Boolean)

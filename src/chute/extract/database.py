"""Database extraction: a table or a query, in pages of batch_size rows, by keyset paging.

Why SQLAlchemy Core: one query builder for every dialect (PostgreSQL through psycopg 3, which
chute already has; SQLite from the standard library; MySQL/MariaDB through PyMySQL; Snowflake,
SQL Server, Oracle... through their own SQLAlchemy dialects when installed), which quotes
identifiers and binds values itself, so no SQL is built from strings. From PostgreSQL the
pages are read into Arrow by ADBC instead (pg_pages.py): Python objects per value cost ~3x
the time. ADBC is not the layer for every dialect: it covers fewer databases (no MySQL on
PyPI); connectorx pages by OFFSET-like partitions.

Paging: every page is

    SELECT cols FROM src
     WHERE <window> AND (cursor, key) > (last cursor, last key)
     ORDER BY cursor, key LIMIT batch_size

written as `c1 > v1 OR (c1 = v1 AND c2 > v2) ...` so every dialect runs it. The order is total
(the key is unique), so a page boundary inside a run of equal cursor values neither repeats
nor skips a row, and the same rows always give the same pages (and the same part bytes).
LIMIT/OFFSET would shift under inserts and repeat or lose rows (a common bug of hand-written ingestion).

A run first reads its upper bound, the greatest (cursor, key) in its window, and stops there:
rows added while it runs are left for the next run, whose lower bound is this run's last row
(the watermark). Values travel raw (as the driver returns them, no SQLAlchemy conversion), so
the watermark compares exactly as the database compared the rows (SQLite stores timestamps as
text: they are compared as text).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import uuid
from typing import Any

import pyarrow as pa

from chute.errors import ConfigError, DatabaseError, DatabaseUnavailable
from chute.extract import pg_pages
from chute.extract.arrow_rows import to_arrow
from chute.config.extract import DatabaseExtract

# What a URL's bare scheme means here (SQLAlchemy's own defaults are drivers chute does not install).
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
_DRIVER_PACKAGES = {"pymysql": "pymysql (pip install 'chute[mysql]')", "snowflake": "snowflake-sqlalchemy",
                    "psycopg2": "psycopg2-binary", "pyodbc": "pyodbc", "oracledb": "oracledb"}


def extract(job) -> Any:
    """Write the rows past the watermark (or in --since/--until) as parts; return the new watermark."""
    spec: DatabaseExtract = job.spec
    source = Source(spec, job.warehouse_url)
    try:
        return source.run(job)
    finally:
        source.close()


class Source:
    def __init__(self, spec: DatabaseExtract, warehouse_url: str | None = None):
        import sqlalchemy as sa

        self.sa = sa
        self.spec = spec
        self.url = _url(spec.url, warehouse_url)
        self.engine = _engine(self.url)
        self.conn = _connect(self.engine)
        self.pages = None  # pages read into Arrow by ADBC (a PostgreSQL source), else fetched here
        self.casts: dict[str, pa.DataType] = {}
        self.order = ([spec.cursor] if spec.cursor else []) + [k for k in spec.key if k != spec.cursor]
        try:
            if self.engine.dialect.name == "postgresql" and self.engine.driver == "psycopg":
                self.pages = pg_pages.open_pages(self.url, self.engine.dialect, self.conn.connection.driver_connection)
            self.relation, self.names = self._relation()
            missing = [c for c in self.order if c not in self.names]
            if missing:
                raise ConfigError(f"extract: {', '.join(missing)} not among the columns of "
                                  f"{spec.table or 'the query'} ({', '.join(self.names)})")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            if self.pages is not None:
                self.pages.close()
        finally:
            self.conn.close()
            self.engine.dispose()

    # -- what is read ----------------------------------------------------------------------
    def _relation(self):
        """The table (or the query as a subquery) with untyped columns, and its column names."""
        sa, spec = self.sa, self.spec
        if spec.table:
            schema, _, name = spec.table.rpartition(".")
            try:
                described = sa.inspect(self.conn).get_columns(name, schema=schema or None)
                names = [c["name"] for c in described]
            except sa.exc.NoSuchTableError:
                raise ConfigError(f"extract: no table {spec.table!r} in {_shown(self.url)}") from None
            except sa.exc.SQLAlchemyError as exc:
                raise _error(exc, self.url) from None
            if spec.columns:
                unknown = [c for c in spec.columns if c not in names]
                if unknown:
                    raise ConfigError(f"extract: columns {', '.join(unknown)} are not in {spec.table!r}")
                names = [c for c in names if c in spec.columns] + [c for c in self.order if c not in spec.columns]
            if self.engine.dialect.name == "sqlite":  # timestamps are text there: parse them into Arrow's
                self.casts = {c["name"]: pa.timestamp("us") if isinstance(c["type"], sa.DateTime) else pa.date32()
                              for c in described if isinstance(c["type"], (sa.DateTime, sa.Date))}
            # Untyped columns: values come back as the driver returns them and go back the same way.
            return sa.table(name, *(sa.column(n) for n in names), schema=schema or None), names
        probe = sa.select(sa.literal_column("*")).select_from(sa.text(spec.query).columns().subquery("chute_q"))
        try:
            names = list(self.conn.execute(probe.limit(0)).keys())
            self.conn.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise _error(exc, self.url, "the query failed") from None
        return sa.text(spec.query).columns(*(sa.column(n) for n in names)).subquery("chute_q"), names

    def _ordered(self):
        return [self.relation.c[n] for n in self.order]

    def _after(self, values: list[Any]):
        """(c1, c2, ...) > (v1, v2, ...), spelled out so every dialect runs it. The redundant
        c1 >= v1 lets the index on (c1, c2, ...) start at the page: without it the databases
        scanned the index from its start and filtered, so each page took longer than the last."""
        sa = self.sa
        cols = self._ordered()
        terms = []
        for i, (col, value) in enumerate(zip(cols, values)):
            equal = [cols[j] == values[j] for j in range(i)]
            terms.append(sa.and_(*equal, col > value))
        return sa.and_(cols[0] >= values[0], sa.or_(*terms))

    def _at_most(self, values: list[Any]):
        return self.sa.and_(self._ordered()[0] <= values[0], self.sa.not_(self._after(values)))

    def _window(self, job) -> list:
        """--since (inclusive) and --until (exclusive) on the cursor."""
        if not job.backfill:
            return []
        if not self.spec.cursor:
            raise ConfigError(f"extraction {job.name!r} has no cursor column: --since/--until need one")
        col = self.relation.c[self.spec.cursor]
        sample = self._fetch(self.sa.select(col).where(col.is_not(None)).limit(1))
        if not sample:
            return []
        kind = sample[0][0]
        where = []
        if job.since is not None:
            where.append(col >= _like(kind, job.since, self.spec.timezone, "--since"))
        if job.until is not None:
            where.append(col < _like(kind, job.until, self.spec.timezone, "--until"))
        return where

    # -- the run ---------------------------------------------------------------------------
    def run(self, job) -> Any:
        sa, spec = self.sa, self.spec
        where = self._window(job)
        start = None
        if spec.cursor and not job.backfill and job.watermark is not None:
            start = decode_position(job.watermark, len(self.order))
            where.append(self._after(start))
        ordered = self._ordered()
        # The upper bound: rows added from now on wait for the next run.
        last_row = self._fetch(sa.select(*ordered).where(*where).order_by(*(c.desc() for c in ordered)).limit(1))
        if not last_row:
            return None
        end = list(last_row[0])
        self._check_not_null(end)
        where.append(self._at_most(end))
        columns = [self.relation.c[n] for n in self.names]
        position = self.order_positions()
        types: dict[str, pa.DataType] = {}
        after = None
        while True:
            page_where = [*where, self._after(after)] if after is not None else where
            page = self._page(sa.select(*columns).where(*page_where).order_by(*ordered).limit(spec.batch_size),
                              position, types)
            if page is None:
                break
            table, first, after = page
            self._check_not_null(first)
            job.writer.write(table)
            if table.num_rows < spec.batch_size or after == end:
                break
        if not spec.cursor:
            return None  # a full extraction each run: nothing to remember
        return encode_position(end) if after is not None else None

    def order_positions(self) -> list[int]:
        return [self.names.index(n) for n in self.order]

    def _page(self, statement, position: list[int], types: dict[str, pa.DataType]
              ) -> tuple[pa.Table, list[Any], list[Any]] | None:
        """One page as Arrow, with its first and last rows' cursor and key values; None when
        it is empty."""
        if self.pages is not None and self.pages.usable:
            read = self.pages.page(statement, types)
            if read is not None:
                table, raw = read
                if not table.num_rows:
                    return None
                ends = [[pg_pages.value(raw, i, row) for i in position] for row in (0, table.num_rows - 1)]
                return table, *ends
        rows = self._fetch(statement)
        if not rows:
            return None
        return to_arrow(rows, self.names, types, self.casts), [rows[0][i] for i in position], \
            [rows[-1][i] for i in position]

    def _check_not_null(self, values: list[Any]) -> None:
        nulls = [n for n, v in zip(self.order, values) if v is None]
        if nulls:
            raise DatabaseError(f"extract: {', '.join(nulls)} has NULL values; the cursor and key columns "
                                "must be NOT NULL to page through the rows")

    def _fetch(self, statement) -> list[tuple]:
        """One page, in a transaction of its own (a long extraction holds no snapshot)."""
        sa = self.sa
        try:
            rows = [tuple(r) for r in self.conn.execute(statement).fetchall()]
            self.conn.commit()
            return rows
        except sa.exc.SQLAlchemyError as exc:
            try:
                self.conn.rollback()
            except sa.exc.SQLAlchemyError:
                pass
            raise _error(exc, self.url) from None


# -- connecting ------------------------------------------------------------------------------
def _url(text: str, warehouse_url: str | None = None):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if text.startswith("warehouse:"):
        # A database on the warehouse's own server (examples, local setups): no second secret to keep.
        name = text.removeprefix("warehouse:")
        try:
            return _url(warehouse_url or "").set(database=name)
        except ConfigError:
            raise ConfigError(f"extract url = {text!r} needs the warehouse as a postgresql:// URL") from None
    if text.startswith("env:"):
        value = os.environ.get(text[4:])
        if not value:
            raise ConfigError(f"extract url = {text!r} but ${text[4:]} is not set")
        text = value
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError("extract url is not a database URL (e.g. postgresql://user@host/db, "
                          "sqlite:///path/to/file.db, mysql://user@host/db)") from None
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    return url


def _engine(url):
    import sqlalchemy as sa

    args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() == "psycopg":
        args = {"connect_timeout": 10, "options": "-c TimeZone=UTC"}  # timestamptz values arrive in UTC
    elif backend in ("mysql", "mariadb"):
        args = {"connect_timeout": 10, "init_command": "SET time_zone = '+00:00'"}
    try:
        return sa.create_engine(url, connect_args=args, poolclass=sa.pool.NullPool)
    except sa.exc.NoSuchModuleError:
        raise ConfigError(f"no SQLAlchemy dialect for {url.drivername!r}: install its package "
                          f"(e.g. snowflake-sqlalchemy for snowflake://)") from None
    except ModuleNotFoundError as exc:
        package = _DRIVER_PACKAGES.get(exc.name or "", exc.name)
        raise ConfigError(f"the driver for {url.drivername!r} is not installed: install {package}") from None


def _connect(engine):
    import sqlalchemy as sa

    try:
        conn = engine.connect()
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = 1")  # an extraction never writes to its source
        return conn
    except sa.exc.SQLAlchemyError as exc:
        raise _error(exc, engine.url) from None


def _shown(url) -> str:
    return url.render_as_string(hide_password=True)


def _error(exc, url, what: str = "the source database refused") -> Exception:
    import sqlalchemy as sa

    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if isinstance(exc, sa.exc.OperationalError) and not isinstance(exc, sa.exc.ProgrammingError):
        text = detail.lower()
        if any(w in text for w in ("connect", "refused", "timeout", "timed out", "server closed", "gone away")):
            return DatabaseUnavailable(f"cannot reach the source database {_shown(url)}: {detail}")
    return DatabaseError(f"{what} ({_shown(url)}): {detail}")


# -- values ----------------------------------------------------------------------------------
def _like(sample: Any, text: str, zone: str, option: str) -> Any:
    """A --since/--until value as the same kind of value as the cursor's."""
    try:
        if isinstance(sample, dt.datetime):
            value = dt.datetime.fromisoformat(text)
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)  # times given on the command line are UTC
            if sample.tzinfo is None:  # the source keeps naive times in the spec's zone
                from zoneinfo import ZoneInfo

                value = value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            return value
        if isinstance(sample, dt.date):
            return dt.date.fromisoformat(text)
        if isinstance(sample, bool):
            raise ValueError
        if isinstance(sample, int):
            return int(text)
        if isinstance(sample, float):
            return float(text)
        if isinstance(sample, decimal.Decimal):
            return decimal.Decimal(text)
    except (ValueError, decimal.InvalidOperation):
        raise ConfigError(f"{option} {text!r} is not a {type(sample).__name__} like the cursor's values") from None
    return text  # text cursors (SQLite's timestamps): compared as text


def encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"text": str(value)}


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (kind, text), = value.items()
        return {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat,
                "decimal": decimal.Decimal, "uuid": uuid.UUID, "hex": bytes.fromhex,
                "text": str}[kind](text)
    return value


def encode_position(values: list[Any]) -> dict:
    """The watermark: the last row's cursor and key, as JSON (typed, to bind them back exactly)."""
    return {"cursor": encode_value(values[0]), "key": [encode_value(v) for v in values[1:]]}


def decode_position(watermark: Any, width: int) -> list[Any]:
    if not isinstance(watermark, dict) or "cursor" not in watermark:
        raise ConfigError(f"the stored watermark {json.dumps(watermark)} is not one of a database extraction")
    values = [decode_value(watermark["cursor"]), *(decode_value(v) for v in watermark.get("key", []))]
    if len(values) != width:
        raise ConfigError("the stored watermark does not match the cursor and key columns (they changed?): "
                          "reset it with a backfill, or delete its row in chute.watermarks")
    return values

"""Connections, target-table DDL and introspection.

Identifiers always go through psycopg.sql.Identifier and values through parameters.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from chute.db.target import Target
from chute.errors import ConfigError, DatabaseError, DatabaseRefused, DatabaseUnavailable
from chute.retry import refused_for_good


def redact(text: str) -> str:
    """Hide passwords in anything that may show a connection string."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.I)


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection. Raises DatabaseRefused when the server refused it for good (a
    wrong password or user, an unknown database: chute.retry.refused_for_good), else
    DatabaseUnavailable (unreachable, refused, timed out: worth a retry)."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        message = f"cannot connect to {redact(url)}: {redact(str(exc)).strip()}"
        kind = DatabaseRefused if refused_for_good(exc) else DatabaseUnavailable
        raise kind(message, sqlstate=exc.sqlstate) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {redact(str(exc)).strip()}",
                            sqlstate=exc.sqlstate) from None


def database_lost(url: str, exc: BaseException) -> DatabaseUnavailable:
    """The error for a connection that broke while in use (the server stopped, the network
    dropped): transient, naming the database (password masked)."""
    detail = " ".join(redact(str(exc)).split())[:300]
    return DatabaseUnavailable(f"the database {redact(url)} went away during the run ({detail}); what was "
                               "committed stays and nothing half-loaded was kept: run again when it is back")


def connect_loader(url: str) -> psycopg.Connection:
    """The connection that writes data: binary COPY plus the ledger rows, one transaction
    (db/loader.py). Not autocommit; its cursors take PostgreSQL's own $1, $2 placeholders,
    so the statements it runs are the same text the server sees."""
    conn = connect(url)
    conn.autocommit = False
    conn.cursor_factory = psycopg.RawCursor
    return conn


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def existing_columns(conn: psycopg.Connection, schema: str, table: str) -> dict[str, str] | None:
    """Column name -> SQL type of an existing table, in order; None when it does not exist."""
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""",
        (schema, table),
    ).fetchall()
    return {name: type_ for name, type_ in rows} or None


def ensure_table(conn: psycopg.Connection, target: Target) -> None:
    """Create the target table if needed; check an existing one has the declared columns (and,
    in merge mode, a key to merge on).

    target.foreign_keys: column -> (schema, table, column) it references. The constraints are
    DEFERRABLE INITIALLY DEFERRED: checked at commit, when every table of the load unit
    holds its rows, whatever order the rows arrived in.
    """
    schema, table, columns, primary_key = target.schema, target.table, target.columns, target.primary_key
    foreign_keys, merge = target.foreign_keys, target.mode == "merge"
    existing = existing_columns(conn, schema, table)
    if existing is None:
        parts = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t.sql)) for n, t in columns.items()]
        if primary_key:
            parts.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, primary_key))))
        for column, (ref_schema, ref_table, ref_column) in (foreign_keys or {}).items():
            parts.append(sql.SQL("FOREIGN KEY ({}) REFERENCES {} ({}) DEFERRABLE INITIALLY DEFERRED").format(
                sql.Identifier(column), qualified(ref_schema, ref_table), sql.Identifier(ref_column)))
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                qualified(schema, table), sql.SQL(", ").join(parts)))
        return
    missing = [n for n in columns if n not in existing]
    if missing:
        raise ConfigError(
            f"table {schema}.{table} exists without column(s) {', '.join(missing)} that chute.toml declares; "
            "add them to the table or change the declaration"
        )
    for name, type_ in columns.items():
        if _normal(existing[name]) != _normal(type_.sql):
            raise ConfigError(
                f"table {schema}.{table} column {name} is {existing[name]} in the database "
                f"but {type_.sql} in chute.toml"
            )
    if merge and not _has_unique_key(conn, schema, table, primary_key):
        key = sql.SQL(", ").join(map(sql.Identifier, primary_key)).as_string(conn)
        name = qualified(schema, table).as_string(conn)
        raise ConfigError(f"table {schema}.{table} has no primary key or unique index on ({', '.join(primary_key)}) "
                          f"or on some of those columns: a merge would update every row sharing a key; add one "
                          f"(ALTER TABLE {name} ADD PRIMARY KEY ({key})) or load with mode append")


def _has_unique_key(conn: psycopg.Connection, schema: str, table: str, key: list[str]) -> bool:
    """Whether a valid primary key or unique index (not partial, not on expressions) has its key
    columns (INCLUDE columns aside) among `key`: then no two rows share a value of `key`."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL "
        "AND i.indexprs IS NULL AND (SELECT array_agg(a.attname::text) FROM unnest(i.indkey) WITH ORDINALITY "
        "k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE k.n <= i.indnkeyatts) <@ %s::text[])",
        (schema, table, key)).fetchone()
    return bool(row[0])


def _normal(sql_type: str) -> str:
    return sql_type.replace("character varying", "varchar").replace("timestamp without time zone", "timestamp") \
        .replace("timestamp with time zone", "timestamptz").replace(" ", "")

"""Where each extraction got to, kept in the ledger's schema of the target database.

    chute.watermarks   one row per (pipeline, extraction): the last value of its cursor
                       (JSON), when it moved, and what the last run wrote; an extraction
                       that fans out (for_each) keeps one more row per key, named
                       `extraction|column=value` (key_name)

The watermark moves only after every part of a run is written, so a crash mid-run leaves it
where it was: the next run extracts the same rows again, into parts with the same bytes,
which the ledger skips by content hash.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS chute;
CREATE TABLE IF NOT EXISTS chute.watermarks (
    pipeline        text NOT NULL,
    extract         text NOT NULL,
    value           jsonb,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_started_at timestamptz,
    last_rows       bigint,
    last_files      integer,
    last_seconds    double precision,
    last_error      text,
    PRIMARY KEY (pipeline, extract)
);
"""

# One extraction of a name at a time (pg_try_advisory_lock namespace, 'chux').
_LOCK_NAMESPACE = 0x63687578


def get(conn: psycopg.Connection, pipeline: str, name: str) -> Any:
    """The extraction's watermark (a JSON value), or None before its first run."""
    row = conn.execute("SELECT value FROM chute.watermarks WHERE pipeline = %s AND extract = %s",
                       (pipeline, name)).fetchone()
    return row[0] if row else None


def key_name(name: str, row: dict[str, Any]) -> str:
    """The watermark's name for one for_each row: `orders|shop=north` (sorted, so it is stable).
    Each key of a fan-out keeps its own place: one key's history never hides another's records."""
    return name + "|" + ",".join(f"{k}={row[k]}" for k in sorted(row))


def keyed(conn: psycopg.Connection, pipeline: str, name: str) -> dict[str, Any]:
    """The watermarks of this extraction's keys: key_name -> value."""
    rows = conn.execute("SELECT extract, value FROM chute.watermarks WHERE pipeline = %s"
                        " AND starts_with(extract, %s) AND value IS NOT NULL", (pipeline, name + "|")).fetchall()
    return dict(rows)


def set(conn: psycopg.Connection, pipeline: str, name: str, value: Any) -> None:  # noqa: A001 (the interface's name)
    conn.execute(
        """INSERT INTO chute.watermarks (pipeline, extract, value) VALUES (%s, %s, %s)
           ON CONFLICT (pipeline, extract) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        (pipeline, name, Jsonb(value)))


def record_run(conn: psycopg.Connection, pipeline: str, name: str, *, started_at, rows: int, files: int,
               seconds: float, error: str | None) -> None:
    """What the last run did, beside the watermark (which it leaves alone)."""
    conn.execute(
        """INSERT INTO chute.watermarks (pipeline, extract, last_started_at, last_rows, last_files, last_seconds,
                                         last_error)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (pipeline, extract) DO UPDATE SET last_started_at = EXCLUDED.last_started_at,
               last_rows = EXCLUDED.last_rows, last_files = EXCLUDED.last_files,
               last_seconds = EXCLUDED.last_seconds, last_error = EXCLUDED.last_error""",
        (pipeline, name, started_at, rows, files, seconds, error))


def try_lock(conn: psycopg.Connection, pipeline: str, name: str) -> bool:
    return conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                        (_LOCK_NAMESPACE, f"{pipeline}/{name}")).fetchone()[0]


def lock(conn: psycopg.Connection, pipeline: str, name: str, *, wait: float = 0.0,
         stop: threading.Event | None = None) -> bool:
    """The extraction's lock, waiting up to `wait` seconds for the process that holds it (a peer
    consumer of the same stage extracting for its own message); False when it is still held.
    Waits in slices of a second at most, so a stop request is heard."""
    if try_lock(conn, pipeline, name):
        return True
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0 and not (stop is not None and stop.is_set()):
        try:
            with conn.transaction():  # a session lock taken in a transaction outlives it
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, int(min(left, 1.0) * 1000))}ms",))
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, f"{pipeline}/{name}"))
            return True
        except psycopg.errors.LockNotAvailable:
            continue
    return False


def unlock(conn: psycopg.Connection, pipeline: str, name: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_NAMESPACE, f"{pipeline}/{name}"))


def describe(value: Any) -> str:
    """A watermark as a person reads it: `updated_at 2024-05-01 12:00:00, order_id 4711`, not a dict."""
    if value is None:
        return "none yet"
    if isinstance(value, dict):
        return ", ".join(f"{k} {describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(describe(v) for v in value)
    text = str(value)
    # ISO timestamps as stored (2024-05-01T12:00:00+00:00): a space reads better than the T.
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":
        text = text[:10] + " " + text[11:]
    return text

"""Dead letters: what chute gave up on, kept for a person to look at, re-queue or purge.

    chute.dead_letters  one row per file version (kind 'file'), event ('event') or chain message ('message')

A file version becomes a dead letter when it fails with a terminal error (bad data, a node
that raises: retrying cannot help) or when it has failed `[watch] max_attempts` times with
transient errors (it could not be read, the connection dropped). Until then a transiently
failed file is tried again by the next run (chute.files.retryable marks it).

An event becomes a dead letter when the run it asked for could not happen through all its
retries (chute watch waits for a database that is away instead, but a run may still fail
before it could record anything). The database being the thing that is down, such
events are first written to PROJECT/.chute/dead-events.jsonl and moved into the table at the
next connection.

States: dead -> requeued (`chute dlq retry`) -> resolved (the next run loaded the file, a
run after the event succeeded, or a person gave up on the file: `chute forget`) or dead again
(it failed again). `chute dlq purge` deletes rows; the files' own history stays in
chute.files, where a purged file's failed version is marked resolved (no longer failing).
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from chute.ledger.files import resolve_versions

SCHEMA_SQL = """
ALTER TABLE chute.files ADD COLUMN IF NOT EXISTS retryable boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS chute.dead_letters (
    dlq_id      bigserial PRIMARY KEY,
    pipeline    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('file', 'event', 'message')),
    name        text NOT NULL,
    version     text NOT NULL,
    error       text,
    attempts    integer NOT NULL DEFAULT 1,
    status      text NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'requeued', 'resolved')),
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline, kind, name, version)
);
"""
OPEN = ("dead", "requeued")
SPOOL = "dead-events.jsonl"


def after_failure(conn: psycopg.Connection, pipeline: str, name: str, sha256: str, error: str, *,
                  retryable: bool, max_attempts: int) -> bool:
    """Mark a just-recorded failed file version; dead-letter it when retrying is over.
    Returns whether it became a dead letter."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE chute.files SET retryable = %s WHERE pipeline = %s AND name = %s AND sha256 = %s"
            " AND status = 'failed' RETURNING attempts", (retryable, pipeline, name, sha256)).fetchone()
        if row is None or (retryable and row[0] < max_attempts):
            return False
        conn.execute(
            """INSERT INTO chute.dead_letters AS d (pipeline, kind, name, version, error, attempts, details)
               VALUES (%s, 'file', %s, %s, %s, %s, %s)
               ON CONFLICT (pipeline, kind, name, version) DO UPDATE SET status = 'dead', error = EXCLUDED.error,
                   attempts = EXCLUDED.attempts, details = EXCLUDED.details, updated_at = now()""",
            (pipeline, name, sha256, error, row[0], Jsonb({"retryable": retryable})))
        return True


def due_again(conn: psycopg.Connection, pipeline: str, max_attempts: int) -> set[tuple[str, str]]:
    """(name, sha256) of failed versions a run should try again: transient failures still under
    max_attempts, and dead letters a person re-queued."""
    rows = conn.execute(
        """SELECT name, sha256 FROM chute.files WHERE pipeline = %s AND status = 'failed' AND retryable
                  AND attempts < %s AND resolved_at IS NULL
           UNION
           SELECT name, version FROM chute.dead_letters WHERE pipeline = %s AND kind = 'file' AND status = 'requeued'""",
        (pipeline, max_attempts, pipeline)).fetchall()
    return {(n, s) for n, s in rows}


def settle(conn: psycopg.Connection, pipeline: str, run_ok: bool) -> None:
    """After a run: file dead letters whose file is now loaded are resolved (the re-queued
    version, or a newer version of the same name); re-queued events are resolved by a run
    that succeeded."""
    with conn.transaction():
        conn.execute(
            """UPDATE chute.dead_letters d SET status = 'resolved', updated_at = now()
                 FROM chute.files f
                WHERE d.pipeline = %s AND d.kind = 'file' AND d.status IN ('dead', 'requeued')
                  AND f.pipeline = d.pipeline AND f.name = d.name
                  AND f.status IN ('loaded', 'loaded_with_rejects')
                  AND (f.sha256 = d.version OR f.updated_at > d.updated_at)""", (pipeline,))
        if run_ok:
            conn.execute("UPDATE chute.dead_letters SET status = 'resolved', updated_at = now()"
                         " WHERE pipeline = %s AND kind = 'event' AND status = 'requeued'", (pipeline,))


# -- events --------------------------------------------------------------------------------
def spool_event(state_dir: Path, pipeline: str, event_id: str, trigger: str, error: str, details: dict) -> None:
    """Write an event that could not be processed to the local spool (the database may be down)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record = {"pipeline": pipeline, "event_id": event_id, "trigger": trigger, "error": error, "details": details}
    with (state_dir / SPOOL).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


def flush_spool(conn: psycopg.Connection, state_dir: Path) -> int:
    """Move spooled dead events into chute.dead_letters; returns how many."""
    spool = state_dir / SPOOL
    if not spool.is_file():
        return 0
    taking = spool.with_name(SPOOL + ".taking")
    spool.replace(taking)  # new events go to a fresh spool while this one is moved
    records = [json.loads(line) for line in taking.read_text(encoding="utf-8").splitlines() if line.strip()]
    with conn.transaction():
        for r in records:
            conn.execute(
                """INSERT INTO chute.dead_letters (pipeline, kind, name, version, error, details)
                   VALUES (%s, 'event', %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (r["pipeline"], r["trigger"], r["event_id"], r["error"], Jsonb(r.get("details") or {})))
    taking.unlink()
    return len(records)


# -- for `chute dlq` -----------------------------------------------------------------------
def listing(conn: psycopg.Connection, pipeline: str, include_resolved: bool = False) -> list[dict]:
    states = ["dead", "requeued", "resolved"] if include_resolved else list(OPEN)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT dlq_id AS id, kind, name, version, status, attempts, error, details, created_at, updated_at"
            " FROM chute.dead_letters WHERE pipeline = %s AND status = ANY(%s) ORDER BY dlq_id",
            (pipeline, states)).fetchall()


def requeue(conn: psycopg.Connection, pipeline: str, ids: list[int] | None) -> list[int]:
    """Mark dead letters (all when ids is None) to be taken again by the next run."""
    if ids is None:
        rows = conn.execute("UPDATE chute.dead_letters SET status = 'requeued', updated_at = now()"
                            " WHERE pipeline = %s AND status = 'dead' RETURNING dlq_id", (pipeline,)).fetchall()
    else:
        rows = conn.execute("UPDATE chute.dead_letters SET status = 'requeued', updated_at = now()"
                            " WHERE pipeline = %s AND status = 'dead' AND dlq_id = ANY(%s) RETURNING dlq_id",
                            (pipeline, ids)).fetchall()
    return sorted(r[0] for r in rows)


def purge(conn: psycopg.Connection, pipeline: str, ids: list[int] | None, resolved_only: bool = False) -> list[int]:
    """Delete dead letters. A purged file's failed version is resolved in chute.files (its
    history stays; it no longer counts as failing)."""
    returning = " RETURNING dlq_id, kind, name, version"
    with conn.transaction():
        if ids is not None:
            rows = conn.execute("DELETE FROM chute.dead_letters WHERE pipeline = %s AND dlq_id = ANY(%s)" + returning,
                                (pipeline, ids)).fetchall()
        else:
            states = ["resolved"] if resolved_only else ["dead", "requeued", "resolved"]
            rows = conn.execute("DELETE FROM chute.dead_letters WHERE pipeline = %s AND status = ANY(%s)" + returning,
                                (pipeline, states)).fetchall()
        resolve_versions(conn, pipeline, [(name, version) for _, kind, name, version in rows if kind == "file"],
                         "its dead letter was purged (chute dlq purge)")
    return sorted(r[0] for r in rows)


def resolve_files(conn: psycopg.Connection, pipeline: str, versions: list[tuple[str, str]], resolution: str) -> None:
    """Close the open dead letters of these (name, sha256) file versions: a person resolved them."""
    conn.execute(
        "UPDATE chute.dead_letters d SET status = 'resolved', updated_at = now(),"
        " details = d.details || jsonb_build_object('resolution', %s::text)"
        " FROM unnest(%s::text[], %s::text[]) AS v(name, sha256)"
        " WHERE d.pipeline = %s AND d.kind = 'file' AND d.name = v.name AND d.version = v.sha256"
        " AND d.status IN ('dead', 'requeued')",
        (resolution, [n for n, _ in versions], [s for _, s in versions], pipeline))


def existing_ids(conn: psycopg.Connection, pipeline: str, ids: list[int]) -> set[int]:
    rows = conn.execute("SELECT dlq_id FROM chute.dead_letters WHERE pipeline = %s AND dlq_id = ANY(%s)",
                        (pipeline, ids)).fetchall()
    return {r[0] for r in rows}

"""The queue between chained stages, in the ledger's schema.

    chute.subscriptions  one row per following stage: whom it follows and what a message carries
    chute.queue          one row per message: stage, payload (jsonb), status, attempts,
                         available_at (backoff), lease_until (a consumer's claim)

States of a message: ready -> leased (claimed by a consumer, FOR UPDATE SKIP LOCKED) ->
done (acknowledged in the same transaction as the consumer's load) or back to ready with
backoff (it failed; attempts left) or dead (attempts used up: a dead letter of the stage,
chute.dead_letters kind 'message'). `chute dlq retry` makes it ready again. A lease that
lapses (the consumer died) makes the message claimable again.

Messages are written by the upstream's load transaction (chain.publish), so there is never
a message without its data nor data without its message.
"""

from __future__ import annotations

import json
import random
import socket
import os
import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS chute;
CREATE TABLE IF NOT EXISTS chute.subscriptions (
    stage             text PRIMARY KEY,
    upstream          text NOT NULL,
    follows           text NOT NULL CHECK (follows IN ('rows', 'files')),
    source_schema     text,
    source_table      text,
    key               text[] NOT NULL DEFAULT '{}',
    keys_per_message  integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_upstream ON chute.subscriptions (upstream);
CREATE TABLE IF NOT EXISTS chute.queue (
    message_id    bigserial PRIMARY KEY,
    stage         text NOT NULL,
    upstream      text NOT NULL,
    upstream_run  bigint,
    payload       jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'leased', 'done', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz,
    leased_by     text,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS queue_waiting ON chute.queue (stage, available_at) WHERE status IN ('ready', 'leased');
"""

# Dead letters of kind 'message': ledgers created before chains allowed only 'file' and 'event'.

_LOCK = 0x63686371  # 'chcq'


def exists(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT to_regclass('chute.queue') IS NOT NULL").fetchone()[0])


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- subscribing ---------------------------------------------------------------------------
def subscribe(conn: psycopg.Connection, stage: str, follow) -> int:
    """Record (or update) what `stage` follows. A new subscription is given the upstream's
    present state as messages (all its keys, or all its loaded files), so a stage started
    after its upstream misses nothing. Returns how many messages that backfill made."""
    schema, table = follow.source() if follow.on == "rows" else (None, None)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, stage))
        row = conn.execute("SELECT upstream, follows, source_schema, source_table, key, keys_per_message"
                           " FROM chute.subscriptions WHERE stage = %s", (stage,)).fetchone()
        wanted = (follow.project, follow.on, schema, table, list(follow.key), follow.keys_per_message)
        if row is not None:
            if tuple(row) != wanted:
                conn.execute("UPDATE chute.subscriptions SET upstream = %s, follows = %s, source_schema = %s,"
                             " source_table = %s, key = %s, keys_per_message = %s, updated_at = now()"
                             " WHERE stage = %s", (*wanted, stage))
            return 0
        conn.execute("INSERT INTO chute.subscriptions (upstream, follows, source_schema, source_table, key,"
                     " keys_per_message, stage) VALUES (%s, %s, %s, %s, %s, %s, %s)", (*wanted, stage))
        payloads = _backfill(conn, follow, schema, table)
        for payload in payloads:
            conn.execute("INSERT INTO chute.queue (stage, upstream, payload) VALUES (%s, %s, %s)",
                         (stage, follow.project, Jsonb(payload)))
        return len(payloads)


def _backfill(conn: psycopg.Connection, follow, schema: str | None, table: str | None) -> list[dict]:
    if follow.on == "files":
        names = [r[0] for r in conn.execute(
            "SELECT name FROM chute.files WHERE pipeline = %s AND status IN ('loaded', 'loaded_with_rejects')"
            " ORDER BY file_id", (follow.project,))]
        return [{"files": c, "backfill": True} for c in chunks(names, follow.keys_per_message)]
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                         (sql.Identifier(schema, table).as_string(conn),)).fetchone()[0]
    if not found:
        return []
    columns = sql.SQL(", ").join(map(sql.Identifier, follow.key))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL("SELECT DISTINCT {} FROM {} ORDER BY {}").format(
            columns, sql.Identifier(schema, table), columns)).fetchall()
    rows = json.loads(json.dumps(rows, default=str))
    return [{"keys": c, "backfill": True} for c in chunks(rows, follow.keys_per_message)]


def subscribers(conn: psycopg.Connection, upstream: str) -> list[dict]:
    if not exists(conn):
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM chute.subscriptions WHERE upstream = %s ORDER BY stage",
                           (upstream,)).fetchall()


# -- consuming -----------------------------------------------------------------------------
def consumer_id() -> str:
    """One consume's name in leased_by: two consumers in one process are told apart too."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def requeue_revived(conn: psycopg.Connection, stage: str) -> int:
    """Dead messages whose dead letter a person re-queued (`chute dlq retry`) become ready."""
    with conn.transaction():
        rows = conn.execute(
            """UPDATE chute.queue q SET status = 'ready', attempts = 0, available_at = now(), error = NULL,
                      updated_at = now()
                 FROM chute.dead_letters d
                WHERE d.pipeline = %s AND d.kind = 'message' AND d.status = 'requeued'
                  AND q.stage = d.pipeline AND q.message_id::text = d.version AND q.status = 'dead'
               RETURNING q.message_id""", (stage,)).fetchall()
    return len(rows)


def claim(conn: psycopg.Connection, stage: str, limit: int, lease: float, by: str | None = None) -> list[dict]:
    """Up to `limit` ready messages (or ones whose consumer's lease lapsed), leased to `by`."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """UPDATE chute.queue SET status = 'leased', attempts = attempts + 1, leased_by = %s,
                      lease_until = now() + make_interval(secs => %s), updated_at = now()
                WHERE message_id IN (
                      SELECT message_id FROM chute.queue
                       WHERE stage = %s AND ((status = 'ready' AND available_at <= now())
                                             OR (status = 'leased' AND lease_until < now()))
                       ORDER BY message_id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING message_id, upstream, upstream_run, payload, attempts, leased_by""",
            (by or consumer_id(), lease, stage, limit)).fetchall()


def renew(conn: psycopg.Connection, message_ids: list[int], by: str, lease: float) -> int:
    """Extend the lease of those of these messages `by` still holds (the consumer's heartbeat
    while their work runs). Acknowledged or failed ones are no longer leased and are left alone."""
    if not message_ids:
        return 0
    return conn.execute(
        "UPDATE chute.queue SET lease_until = now() + make_interval(secs => %s)"
        " WHERE message_id = ANY(%s) AND status = 'leased' AND leased_by = %s",
        (lease, list(message_ids), by)).rowcount


# Run inside the consumer's load transaction ($n parameters): the message is done
# exactly when the rows it brought are committed.
ACK_SQL = """
UPDATE chute.queue SET status = 'done', lease_until = NULL, error = NULL, updated_at = now()
 WHERE message_id = $1
"""
RESOLVE_SQL = """
UPDATE chute.dead_letters SET status = 'resolved', updated_at = now()
 WHERE pipeline = $1 AND kind = 'message' AND version = $2 AND status IN ('dead', 'requeued')
"""


def ack(conn: psycopg.Connection, stage: str, message_id: int) -> None:
    """A message with nothing (new) to load: acknowledged on its own."""
    with conn.transaction():
        conn.execute(ACK_SQL.replace("$1", "%s"), (message_id,))
        conn.execute(RESOLVE_SQL.replace("$1", "%s").replace("$2", "%s"), (stage, str(message_id)))


def fail(conn: psycopg.Connection, stage: str, message: dict, error: str, *, max_attempts: int,
         initial: float, maximum: float) -> bool:
    """A message whose work failed: back to ready after a backoff, or dead (returns True)."""
    attempts = message["attempts"]
    dead = attempts >= max_attempts
    delay = min(maximum, initial * 2 ** (attempts - 1)) + random.uniform(0, min(initial, 1.0))
    with conn.transaction():
        mine = conn.execute(
            "UPDATE chute.queue SET status = %s, error = %s, lease_until = NULL, updated_at = now(),"
            " available_at = now() + make_interval(secs => %s) WHERE message_id = %s AND status = 'leased'"
            " AND leased_by IS NOT DISTINCT FROM %s",  # not if our lease lapsed and another consumer holds it
            ("dead" if dead else "ready", error, 0 if dead else delay, message["message_id"],
             message.get("leased_by"))).rowcount
        if dead and mine:
            conn.execute(
                """INSERT INTO chute.dead_letters AS d (pipeline, kind, name, version, error, attempts, details)
                   VALUES (%s, 'message', %s, %s, %s, %s, %s)
                   ON CONFLICT (pipeline, kind, name, version) DO UPDATE SET status = 'dead',
                       error = EXCLUDED.error, attempts = EXCLUDED.attempts, details = EXCLUDED.details,
                       updated_at = now()""",
                (stage, f"from {message['upstream']}: {describe(message['payload'])}", str(message["message_id"]),
                 error, attempts, Jsonb({"payload": message["payload"], "upstream": message["upstream"],
                                         "upstream_run": message["upstream_run"]})))
    return dead and bool(mine)


def release(conn: psycopg.Connection, message_ids: list[int], by: str | None = None) -> None:
    """Messages claimed but not started (the run was asked to stop, or a peer held the
    extraction): ready again, no attempt spent. With `by`, only those that consumer holds."""
    if message_ids:
        with conn.transaction():
            conn.execute("UPDATE chute.queue SET status = 'ready', attempts = greatest(attempts - 1, 0),"
                         " lease_until = NULL, updated_at = now() WHERE message_id = ANY(%s) AND status = 'leased'"
                         " AND (%s::text IS NULL OR leased_by = %s)", (message_ids, by, by))


def describe(payload: dict) -> str:
    if "keys" in payload:
        keys = payload["keys"]
        shown = ", ".join(",".join(f"{k}={v}" for k, v in row.items()) for row in keys[:3])
        return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    files = payload.get("files", [])
    return ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")


# -- looking -------------------------------------------------------------------------------
def depth(conn: psycopg.Connection, stage: str | None = None) -> dict[str, dict[str, int]]:
    """stage -> {ready, leased, dead, done} message counts (ready includes those in backoff)."""
    if not exists(conn):
        return {}
    query = "SELECT stage, status, count(*) FROM chute.queue"
    rows = conn.execute(query + " WHERE stage = %s GROUP BY 1, 2" if stage else query + " GROUP BY 1, 2",
                        (stage,) if stage else None).fetchall()
    out: dict[str, dict[str, int]] = {}
    for s, status, n in rows:
        out.setdefault(s, {"ready": 0, "leased": 0, "dead": 0, "done": 0})[status] = n
    return out


def waiting(conn: psycopg.Connection, stage: str) -> int:
    """Messages a consumer could claim now."""
    if not exists(conn):
        return 0
    return int(conn.execute(
        "SELECT count(*) FROM chute.queue WHERE stage = %s AND ((status = 'ready' AND available_at <= now())"
        " OR (status = 'leased' AND lease_until < now()))", (stage,)).fetchone()[0])


def revivable(conn: psycopg.Connection, stage: str) -> int:
    if not exists(conn):
        return 0
    return int(conn.execute(
        "SELECT count(*) FROM chute.dead_letters WHERE pipeline = %s AND kind = 'message' AND status = 'requeued'",
        (stage,)).fetchone()[0])


def to_json(payload: Any) -> str:
    return json.dumps(payload, default=str, separators=(",", ":"))

"""Workers and their claims on files, so several `chute run` / `chute watch` processes (on
one machine or many) can share one landing zone and one database.

    chute.workers  one row per live Runner: its run, host, pid and lease expiry
    chute.claims   (pipeline, name) -> the worker processing that file, until expires_at

A worker claims a few files at a time (INSERT ... ON CONFLICT DO UPDATE ... WHERE the old
claim expired), loads them, and releases the claims. A heartbeat thread extends its
lease while it works. A worker that dies stops renewing: its claims expire after the lease
and another worker takes the files. A dead worker on the SAME host is noticed at once (its
pid is gone), so a restarted process does not wait for the lease.

Claims only decide who does the work. The ledger's partial unique index on chute.files
(pipeline, sha256) WHERE loaded stays the final guard: even a worker whose lease lapsed
while it was still loading cannot load the same content a second time.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import psycopg

from chute.ledger.heartbeat import Heartbeat

log = logging.getLogger("chute.workers")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS chute;
CREATE TABLE IF NOT EXISTS chute.workers (
    worker      text PRIMARY KEY,
    pipeline    text NOT NULL,
    run_id      bigint,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS chute.claims (
    pipeline    text NOT NULL,
    name        text NOT NULL,
    worker      text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (pipeline, name)
);
"""

# Sorted, so two workers claiming overlapping sets lock rows in the same order (no deadlock).
CLAIM_SQL = """
INSERT INTO chute.claims AS c (pipeline, name, worker, expires_at)
SELECT %(pipeline)s, n, %(worker)s, now() + make_interval(secs => %(lease)s)
  FROM unnest(%(names)s::text[]) AS n ORDER BY n
ON CONFLICT (pipeline, name) DO UPDATE
   SET worker = EXCLUDED.worker, claimed_at = now(), expires_at = EXCLUDED.expires_at
 WHERE c.expires_at < now() OR c.worker = EXCLUDED.worker
RETURNING name
"""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Worker:
    """This process's identity in the ledger, its lease, and the claims it holds."""

    def __init__(self, db_url: str, pipeline: str, lease: float):
        self.db_url = db_url
        self.pipeline = pipeline
        self.lease = float(lease)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._beat: Heartbeat | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def register(self, conn: psycopg.Connection, run_id: int) -> None:
        conn.execute(
            "INSERT INTO chute.workers (worker, pipeline, run_id, host, pid, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
            (self.id, self.pipeline, run_id, self.host, self.pid, self.lease))

    def start_heartbeat(self) -> None:
        self._beat = Heartbeat(self.db_url, self.lease / 3, self._renew, self.id).start()

    def close(self, conn: psycopg.Connection | None) -> None:
        """Stop the heartbeat; drop this worker's row and any claim it still holds."""
        if self._beat:
            self._beat.stop()
        if conn is not None and not conn.closed:
            with conn.transaction():
                conn.execute("DELETE FROM chute.claims WHERE worker = %s", (self.id,))
                conn.execute("DELETE FROM chute.workers WHERE worker = %s", (self.id,))

    def _renew(self, conn: psycopg.Connection) -> None:
        conn.execute("UPDATE chute.workers SET expires_at = now() + make_interval(secs => %s)"
                     " WHERE worker = %s", (self.lease, self.id))
        conn.execute("UPDATE chute.claims SET expires_at = now() + make_interval(secs => %s)"
                     " WHERE worker = %s", (self.lease, self.id))

    # -- claims ----------------------------------------------------------------------------
    def claim(self, conn: psycopg.Connection, names: list[str]) -> set[str]:
        """Claim what can be claimed of `names`; the rest is held by live workers."""
        if not names:
            return set()
        rows = conn.execute(CLAIM_SQL, dict(pipeline=self.pipeline, worker=self.id, lease=self.lease,
                                            names=sorted(set(names)))).fetchall()
        return {r[0] for r in rows}

    def release(self, conn: psycopg.Connection, names: list[str]) -> None:
        conn.execute("DELETE FROM chute.claims WHERE pipeline = %s AND worker = %s AND name = ANY(%s)",
                     (self.pipeline, self.id, list(names)))


def live_claims(conn: psycopg.Connection, pipeline: str, names: list[str]) -> int:
    """How many of these files some worker (any, this one included) holds a live claim on."""
    return conn.execute("SELECT count(*) FROM chute.claims WHERE pipeline = %s AND name = ANY(%s)"
                        " AND expires_at > now()", (pipeline, names)).fetchone()[0]


def reap(conn: psycopg.Connection, pipeline: str) -> int:
    """Expire workers of this host whose process is gone, and mark runs no live worker holds
    as abandoned. Returns how many runs were abandoned."""
    host = socket.gethostname()
    dead = [w for w, pid in conn.execute("SELECT worker, pid FROM chute.workers WHERE host = %s AND expires_at > now()",
                                         (host,)).fetchall() if not _pid_alive(pid)]
    with conn.transaction():
        if dead:
            conn.execute("UPDATE chute.workers SET expires_at = now() - interval '1 second' WHERE worker = ANY(%s)",
                         (dead,))
            conn.execute("UPDATE chute.claims SET expires_at = now() - interval '1 second' WHERE worker = ANY(%s)",
                         (dead,))
        cur = conn.execute(
            "UPDATE chute.runs r SET status = 'abandoned', ended_at = now(),"
            " error = 'the process ended before the run did'"
            " WHERE r.pipeline = %s AND r.status = 'running' AND NOT EXISTS"
            " (SELECT 1 FROM chute.workers w WHERE w.run_id = r.run_id AND w.expires_at > now())", (pipeline,))
        conn.execute("DELETE FROM chute.workers WHERE expires_at < now() - interval '1 day'")
    return cur.rowcount


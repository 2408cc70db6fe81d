"""The ledger: schema `chute` in the target database.

    chute.runs   one row per run: trigger, times, status, counters, per-node timings
    chute.files  one row per file version (pipeline, name, sha256): its state, counts, error
    chute.rejects  rejected rows (see quality/quarantine.py)

Every file version ends in one state: loaded, loaded_with_rejects, failed (kept for retry,
with the error) or skipped (its content was already loaded under another name, and that
name makes no difference to its rows: run/runner.py, Runner._twin). A partial unique index
makes PostgreSQL itself refuse to load the same content twice for a pipeline, except
versions loaded `by_name`.

A failed version a person gave up on (`chute forget`, or its dead letter purged) is
*resolved*: `resolved_at` and `resolution` say when and how; its row and error stay. It no
longer counts as failing, and is not retried unless asked (--retry-failed). A new failure
of the same version makes it unresolved again.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chute import __version__

if TYPE_CHECKING:
    from chute.sources.base import FileEntry

LOADED_STATES = ("loaded", "loaded_with_rejects")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS chute;
CREATE TABLE IF NOT EXISTS chute.runs (
    run_id         bigserial PRIMARY KEY,
    pipeline       text NOT NULL,
    trigger        text NOT NULL DEFAULT 'manual',
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    files_seen     integer NOT NULL DEFAULT 0,
    files_loaded   integer NOT NULL DEFAULT 0,
    files_failed   integer NOT NULL DEFAULT 0,
    files_skipped  integer NOT NULL DEFAULT 0,
    rows_read      bigint NOT NULL DEFAULT 0,
    rows_loaded    bigint NOT NULL DEFAULT 0,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    error          text,
    host           text,
    pid            integer,
    chute_version  text,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_pipeline ON chute.runs (pipeline, run_id DESC);
CREATE TABLE IF NOT EXISTS chute.files (
    file_id        bigserial PRIMARY KEY,
    pipeline       text NOT NULL,
    name           text NOT NULL,
    uri            text NOT NULL,
    size           bigint NOT NULL,
    mtime_ns       bigint,
    sha256         text NOT NULL,
    status         text NOT NULL
                   CHECK (status IN ('loaded', 'loaded_with_rejects', 'failed', 'skipped')),
    run_id         bigint REFERENCES chute.runs,
    rows_read      bigint,
    rows_loaded    bigint,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    error          text,
    duplicate_of   bigint REFERENCES chute.files,
    attempts       integer NOT NULL DEFAULT 1,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline, name, sha256)
);
ALTER TABLE chute.files ADD COLUMN IF NOT EXISTS by_name boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX IF NOT EXISTS files_loaded_content_once
    ON chute.files (pipeline, sha256) WHERE status IN ('loaded', 'loaded_with_rejects') AND NOT by_name;
DROP INDEX IF EXISTS chute.files_content_loaded_once;
ALTER TABLE chute.files ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
ALTER TABLE chute.files ADD COLUMN IF NOT EXISTS resolution text;
"""

# The index above: a load it refuses met content another worker loaded meanwhile. A version
# loaded `by_name` (the same content as a loaded file, under a name that changes its rows: a
# file's name can be data, run/runner.py: Runner._twin) is outside it; (pipeline, name, sha256)
# is unique anyway.
CONTENT_INDEX = "files_loaded_content_once"

# Held for the whole run only when a table is in replace mode; otherwise workers that share
# a zone claim files (chute.workers).
_LOCK_NAMESPACE = 0x63687574  # 'chut'


def try_lock(conn: psycopg.Connection, pipeline: str) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, pipeline)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection, pipeline: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_NAMESPACE, pipeline))


def start_run(conn: psycopg.Connection, pipeline: str, trigger: str) -> int:
    # Runs left 'running' by a dead process are marked abandoned by workers.reap.
    row = conn.execute(
        "INSERT INTO chute.runs (pipeline, trigger, host, pid, chute_version) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING run_id",
        (pipeline, trigger, socket.gethostname(), os.getpid(), __version__),
    ).fetchone()
    assert row
    return int(row[0])


def finish_run(conn: psycopg.Connection, run_id: int, status: str, files_seen: int, error: str | None,
               details: dict) -> None:
    conn.execute(
        "UPDATE chute.runs SET status = %s, ended_at = now(), files_seen = %s, error = %s, details = %s"
        " WHERE run_id = %s",
        (status, files_seen, error, json.dumps(details), run_id),
    )


@dataclass(frozen=True)
class Known:
    file_id: int
    size: int
    mtime_ns: int | None
    sha256: str
    status: str
    resolved: bool = False  # a failed version a person gave up on (chute forget)


def known_files(conn: psycopg.Connection, pipeline: str, names: list[str] | None = None) -> dict[str, list[Known]]:
    """Every recorded version of every file name of the pipeline (or of just `names`)."""
    out: dict[str, list[Known]] = {}
    query = ("SELECT name, file_id, size, mtime_ns, sha256, status, resolved_at IS NOT NULL FROM chute.files"
             " WHERE pipeline = %s")
    cur = conn.execute(query, (pipeline,)) if names is None else \
        conn.execute(query + " AND name = ANY(%s)", (pipeline, names))
    for name, *rest in cur:
        out.setdefault(name, []).append(Known(*rest))
    return out


def loaded_content(conn: psycopg.Connection, pipeline: str) -> dict[str, list[tuple[int, str]]]:
    """sha256 -> [(file_id, name)] of content already loaded, first loaded first (one name
    unless the content was loaded again under a name that makes other rows: `by_name`)."""
    cur = conn.execute(
        "SELECT sha256, file_id, name FROM chute.files WHERE pipeline = %s AND status IN ('loaded', 'loaded_with_rejects')"
        " ORDER BY file_id", (pipeline,))
    out: dict[str, list[tuple[int, str]]] = {}
    for sha, fid, name in cur:
        out.setdefault(sha, []).append((fid, name))
    return out


@dataclass
class LedgerRow:
    """A file version's row in chute.files as a run writes it: the one shape of the ledger's file
    rows. A load stages its files' rows in its own transaction (COMMIT_FILES_SQL, through
    load/unit.py); record_outcome writes a failed or skipped file's row on its own."""
    pipeline: str
    name: str
    uri: str
    size: int
    mtime_ns: int | None
    sha256: str
    status: str  # loaded | loaded_with_rejects | failed | skipped
    run_id: int
    rows_read: int | None = None
    rows_loaded: int | None = None
    rows_rejected: int = 0
    by_name: bool = False  # loaded although its content was loaded under another name (its name is data)

    @classmethod
    def of(cls, pipeline: str, run_id: int, entry: FileEntry, sha256: str, status: str, *,
           rows_read: int | None = None, rows_loaded: int | None = None, rows_rejected: int = 0,
           by_name: bool = False) -> LedgerRow:
        """The row of `entry` (its name, uri, size, mtime); a file that loaded is `loaded_with_rejects`
        when some of its rows were rejected."""
        if status == "loaded" and rows_rejected:
            status = "loaded_with_rejects"
        return cls(pipeline, entry.name, entry.uri, entry.size, entry.mtime_ns, sha256, status, run_id,
                   rows_read, rows_loaded, rows_rejected, by_name)

    @property
    def loaded(self) -> bool:
        return self.status in LOADED_STATES


def latest_versions(conn: psycopg.Connection, pipeline: str, names: list[str] | set[str], *,
                    status: str | None = None) -> dict[str, tuple[str, str | None]]:
    """Per name, the (status, error) of its latest version; with `status`, of its latest version
    in that state. Names with no such version are left out."""
    query = "SELECT DISTINCT ON (name) name, status, error FROM chute.files WHERE pipeline = %s AND name = ANY(%s)"
    params: tuple = (pipeline, sorted(names))
    if status is not None:
        query += " AND status = %s"
        params += (status,)
    rows = conn.execute(query + " ORDER BY name, updated_at DESC", params).fetchall()
    return {name: (state, error) for name, state, error in rows}


def latest_loaded_id(conn: psycopg.Connection, pipeline: str, name: str) -> int | None:
    """file_id of the latest loaded version of a file name (None if none loaded)."""
    row = conn.execute("SELECT max(file_id) FROM chute.files WHERE pipeline = %s AND name = %s"
                       " AND status IN ('loaded', 'loaded_with_rejects')", (pipeline, name)).fetchone()
    return row[0] if row else None


def record_outcome(conn: psycopg.Connection, row: LedgerRow, *, error: str | None = None,
                   duplicate_of: int | None = None) -> None:
    """A file that did not load (failed or skipped), outside any load transaction."""
    with conn.transaction():
        conn.execute(
            """INSERT INTO chute.files AS f (pipeline, name, uri, size, mtime_ns, sha256, status, run_id,
                                            rows_read, error, duplicate_of)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (pipeline, name, sha256) DO UPDATE SET
                   status = EXCLUDED.status, run_id = EXCLUDED.run_id, rows_read = EXCLUDED.rows_read,
                   error = EXCLUDED.error, duplicate_of = EXCLUDED.duplicate_of, mtime_ns = EXCLUDED.mtime_ns,
                   attempts = f.attempts + 1, updated_at = now(), resolved_at = NULL
               WHERE f.status NOT IN ('loaded', 'loaded_with_rejects')  -- never undo a load""",
            (row.pipeline, row.name, row.uri, row.size, row.mtime_ns, row.sha256, row.status, row.run_id,
             row.rows_read, error, duplicate_of),
        )
        column = sql.Identifier("files_failed" if row.status == "failed" else "files_skipped")
        conn.execute(sql.SQL("UPDATE chute.runs SET {0} = {0} + 1, rows_read = rows_read + %s WHERE run_id = %s")
                     .format(column), (row.rows_read or 0, row.run_id))


def touch(conn: psycopg.Connection, pipeline: str, entry: FileEntry, sha256: str) -> None:
    """A settled file seen again with the same content but a new mtime: remember the new mtime, keep its state."""
    with conn.transaction():
        conn.execute("UPDATE chute.files SET mtime_ns = %s, updated_at = now() "
                     "WHERE pipeline = %s AND name = %s AND sha256 = %s",
                     (entry.mtime_ns, pipeline, entry.name, sha256))


# Written on the load connection (psycopg raw cursor, $n placeholders) inside the load transaction, so a
# file's ledger row commits together with its rows. The rows come from a staged Arrow table.
COMMIT_FILES_SQL = """
INSERT INTO chute.files AS f (pipeline, name, uri, size, mtime_ns, sha256, status, run_id,
                              rows_read, rows_loaded, rows_rejected, by_name)
SELECT pipeline, name, uri, size, mtime_ns, sha256, status, run_id, rows_read, rows_loaded, rows_rejected, by_name
  FROM chute_stage_files
ON CONFLICT (pipeline, name, sha256) DO UPDATE SET
    status = EXCLUDED.status, by_name = EXCLUDED.by_name, run_id = EXCLUDED.run_id, rows_read = EXCLUDED.rows_read,
    rows_loaded = EXCLUDED.rows_loaded, rows_rejected = EXCLUDED.rows_rejected, error = NULL,
    mtime_ns = EXCLUDED.mtime_ns, attempts = f.attempts + 1, updated_at = now(), resolved_at = NULL
"""

# A replay's file row (run/replay.py), in the replay's load transaction ($1 rows loaded, $2 file_id):
# more rows loaded, fewer rejected; 'loaded' once none of its rejects is pending.
REPLAYED_FILE_SQL = """
UPDATE chute.files f SET
    rows_loaded = coalesce(f.rows_loaded, 0) + $1,
    rows_rejected = p.records,
    status = CASE WHEN p.records = 0 THEN 'loaded' ELSE 'loaded_with_rejects' END,
    updated_at = now()
  FROM (SELECT count(DISTINCT (coalesce(target_table, ''), coalesce(row_number, -reject_id))) AS records
          FROM chute.rejects WHERE file_id = $2 AND replay_state = 'pending') p
 WHERE f.file_id = $2
"""

COMMIT_RUN_SQL = """
UPDATE chute.runs SET files_loaded = files_loaded + $1, rows_read = rows_read + $2,
                      rows_loaded = rows_loaded + $3, rows_rejected = rows_rejected + $4
 WHERE run_id = $5
RETURNING pg_current_xact_id()::text::bigint
"""


def recent_runs(conn: psycopg.Connection, pipeline: str, limit: int = 10) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT run_id, trigger, status, started_at, ended_at, files_seen, files_loaded, files_failed,"
            " files_skipped, rows_read, rows_loaded, rows_rejected, error FROM chute.runs"
            " WHERE pipeline = %s ORDER BY run_id DESC LIMIT %s", (pipeline, limit)).fetchall()


def file_counts(conn: psycopg.Connection, pipeline: str) -> dict[str, int]:
    """Ledger rows (file versions) by state. A failure counts as `failed` only while it is open
    (as failed_files lists them): `resolved` once someone resolved it, `superseded` once a later
    version of the same name was recorded (the file was fixed and landed again)."""
    rows = conn.execute("""
        SELECT CASE WHEN f.status <> 'failed' THEN f.status
                    WHEN f.resolved_at IS NOT NULL THEN 'resolved'
                    WHEN EXISTS (SELECT 1 FROM chute.files g WHERE g.pipeline = f.pipeline AND g.name = f.name
                                    AND g.updated_at >= f.updated_at
                                    AND (g.updated_at > f.updated_at OR g.file_id > f.file_id)) THEN 'superseded'
                    ELSE 'failed' END, count(*)
          FROM chute.files f WHERE f.pipeline = %s GROUP BY 1""", (pipeline,)).fetchall()
    return {status: n for status, n in rows}


# The latest version of each file name, when it failed and nobody resolved it: the open
# failures (index files_open_failures) that no later version of the same name follows (index
# files_name_latest), rather than the latest version of every name. Ties on updated_at go to
# the higher file_id.
_OPEN_FAILURES = """
SELECT f.name, f.status, f.error, f.run_id, f.updated_at, f.resolved_at FROM chute.files f
 WHERE f.pipeline = %s AND f.status = 'failed' AND f.resolved_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM chute.files g WHERE g.pipeline = f.pipeline AND g.name = f.name
                      AND g.updated_at >= f.updated_at AND (g.updated_at > f.updated_at OR g.file_id > f.file_id))"""


def failed_files(conn: psycopg.Connection, pipeline: str, limit: int | None = 20) -> list[dict]:
    """Files whose latest version failed and is not resolved, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_OPEN_FAILURES + " ORDER BY updated_at DESC LIMIT %s", (pipeline, limit)).fetchall()


def failed_count(conn: psycopg.Connection, pipeline: str) -> int:
    """File names whose latest version failed and is not resolved (as failed_files lists them)."""
    return int(conn.execute(f"SELECT count(*) FROM ({_OPEN_FAILURES}) open", (pipeline,)).fetchone()[0])


def resolve_failed(conn: psycopg.Connection, pipeline: str, names: list[str] | set[str],
                   resolution: str) -> list[tuple[str, str]]:
    """Resolve the failed, unresolved versions of these file names (their rows and errors stay).
    Returns their (name, sha256); the caller closes their dead letters in the same transaction."""
    return [(n, s) for n, s in conn.execute(
        "UPDATE chute.files SET resolved_at = now(), resolution = %s WHERE pipeline = %s AND name = ANY(%s)"
        " AND status = 'failed' AND resolved_at IS NULL RETURNING name, sha256",
        (resolution, pipeline, sorted(names))).fetchall()]


def resolve_versions(conn: psycopg.Connection, pipeline: str, versions: list[tuple[str, str]], resolution: str) -> None:
    """Resolve these failed (name, sha256) versions: their dead letters were purged."""
    if versions:
        conn.execute(
            "UPDATE chute.files f SET resolved_at = now(), resolution = %s"
            " FROM unnest(%s::text[], %s::text[]) AS v(name, sha256)"
            " WHERE f.pipeline = %s AND f.name = v.name AND f.sha256 = v.sha256 AND f.status = 'failed'"
            " AND f.resolved_at IS NULL",
            (resolution, [n for n, _ in versions], [s for _, s in versions], pipeline))


def pipelines(conn: psycopg.Connection) -> list[str]:
    """The pipelines this ledger has files or runs of."""
    return [r[0] for r in conn.execute("SELECT pipeline FROM chute.files UNION SELECT pipeline FROM chute.runs"
                                       " ORDER BY 1").fetchall()]


def schema_exists(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT to_regclass('chute.files') IS NOT NULL").fetchone()[0])

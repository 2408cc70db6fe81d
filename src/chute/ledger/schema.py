"""Schema `chute`: every table chute keeps in the target database, created in one place.

    chute.runs, chute.files    the ledger (files.py)
    chute.rejects              rejected rows (quality/quarantine.py reads and writes them)
    chute.workers              live runners and their claims (workers.py)
    chute.dead_letters         files, events and messages given up on (deadletters.py)
    chute.subscriptions, chute.queue   the chain between stages (queue.py)
    chute.watermarks           where each extraction got to (watermarks.py)
    chute.schedule_fires       each schedule's fires and misses (watch/schedule.py)
    chute.column_formats       date/time formats of tables whose columns were inferred (quality/gate.py)

Every statement is idempotent (CREATE ... IF NOT EXISTS), run under one advisory lock so that
first runs starting together do not race.
"""

from __future__ import annotations

import psycopg

from chute.db.postgres import ensure_table
from chute.db.target import Target
from chute.ledger import deadletters, files, queue, watermarks, workers

_LOCK = 0x63687574  # 'chut'

REJECTS_SQL = """
CREATE TABLE IF NOT EXISTS chute.rejects (
    reject_id      bigserial PRIMARY KEY,
    pipeline       text NOT NULL,
    run_id         bigint REFERENCES chute.runs,
    file_id        bigint REFERENCES chute.files,
    file_name      text NOT NULL,
    file_sha256    text NOT NULL,
    target_table   text,                 -- schema.table the row was meant for; NULL for a parse error
    row_number     bigint,               -- the record's position among the file's data records (1 = first)
    line_number    bigint,               -- the line of the file where the record starts (1 = first line)
    column_name    text,                 -- the column the check is about; NULL for a whole-record problem
    check_name     text NOT NULL,        -- parse | type | not_null | unique | min | max | allowed | regex | length | a rule's name
    reason         text NOT NULL,
    value          text,                 -- the offending value as text (masked for PII columns)
    raw_record     text,                 -- the source line(s) (PII masked), else the row as JSON
    replay_state   text NOT NULL DEFAULT 'pending'
                   CHECK (replay_state IN ('pending', 'replayed', 'discarded')),
    replayed_at    timestamptz,
    replay_run_id  bigint REFERENCES chute.runs,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rejects_file ON chute.rejects (pipeline, file_name, row_number);
CREATE INDEX IF NOT EXISTS rejects_pending ON chute.rejects (pipeline, created_at DESC)
    WHERE replay_state = 'pending';
"""

SCHEDULES_SQL = """
CREATE SCHEMA IF NOT EXISTS chute;
CREATE TABLE IF NOT EXISTS chute.schedule_fires (
    pipeline   text NOT NULL,
    schedule   text NOT NULL,
    due_at     timestamptz NOT NULL,
    status     text NOT NULL CHECK (status IN ('fired', 'missed')),
    cron       text NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT now(),
    note       text,
    PRIMARY KEY (pipeline, schedule, due_at)
);
"""

# The date/time format found in a text column when its table was created with inferred columns
# (quality/gate.py, in the transaction of that first load): later loads parse the column's text
# with it, as they parse a declared [source.formats] one (a later file whose days never pass 12
# could not settle the order on its own).
FORMATS_SQL = """
CREATE TABLE IF NOT EXISTS chute.column_formats (
    table_schema  text NOT NULL,
    table_name    text NOT NULL,
    column_name   text NOT NULL,
    format        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_schema, table_name, column_name)
);
"""
# Run on the load connection ($n placeholders): the formats of a table created in this transaction.
SET_FORMATS_SQL = ("DELETE FROM chute.column_formats WHERE table_schema = $1 AND table_name = $2",
                   "INSERT INTO chute.column_formats (table_schema, table_name, column_name, format)"
                   " SELECT $1, $2, c, f FROM unnest($3::text[], $4::text[]) AS x(c, f)")


def ensure_targets(conn: psycopg.Connection, targets: dict[str, Target]) -> None:
    """Each target table created or checked (db/postgres.py: ensure_table); a table created
    earlier with inferred columns also gets the date/time formats found then."""
    for t in targets.values():
        ensure_table(conn, t)
        if t.inferred and t.columns:
            t.formats = dict(conn.execute(
                "SELECT column_name, format FROM chute.column_formats WHERE table_schema = %s AND table_name = %s",
                (t.schema, t.table)).fetchall())


# Indexes for what the dashboard and `chute status` read of a large ledger (docs/benchmarks.md,
# "Dashboard at scale"): the latest version of each file name, the open failures, the files of a
# run, the files counted by status, the files page newest first, and the pending rejects counted
# by row and by check.
READ_INDEXES_SQL = """
CREATE INDEX IF NOT EXISTS files_name_latest ON chute.files (pipeline, name, updated_at DESC);
CREATE INDEX IF NOT EXISTS files_open_failures ON chute.files (pipeline, updated_at DESC)
    WHERE status = 'failed' AND resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS files_run ON chute.files (run_id);
CREATE INDEX IF NOT EXISTS files_status ON chute.files (pipeline, status);
CREATE INDEX IF NOT EXISTS files_newest ON chute.files (pipeline, updated_at DESC, file_id DESC);
CREATE INDEX IF NOT EXISTS rejects_pending_rows ON chute.rejects (pipeline, file_sha256, row_number)
    WHERE replay_state = 'pending';
CREATE INDEX IF NOT EXISTS rejects_pending_table ON chute.rejects (pipeline, target_table, check_name)
    WHERE replay_state = 'pending';
"""

DEAD_LETTER_KINDS_SQL = """
ALTER TABLE chute.dead_letters DROP CONSTRAINT IF EXISTS dead_letters_kind_check;
ALTER TABLE chute.dead_letters ADD CONSTRAINT dead_letters_kind_check CHECK (kind IN ('file', 'event', 'message'));
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create what is missing of schema chute (cheap when all of it is there)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        for statement in (files.SCHEMA_SQL, REJECTS_SQL, workers.SCHEMA_SQL, deadletters.SCHEMA_SQL, queue.SCHEMA_SQL,
                          watermarks.SCHEMA_SQL, SCHEDULES_SQL, FORMATS_SQL, READ_INDEXES_SQL):
            conn.execute(statement)
        # Databases made before chain messages could become dead letters: widen the kinds.
        definition = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'dead_letters_kind_check'"
            " AND conrelid = 'chute.dead_letters'::regclass").fetchone()
        if definition is None or "message" not in definition[0]:
            conn.execute(DEAD_LETTER_KINDS_SQL)

"""Quarantine: rejected rows in `chute.rejects`, written in the same transaction as the good
rows and the file's ledger row, so a file's rejects exist exactly when its load committed.

    chute.rejects  one row per (rejected source record, failed check): where it came from
                   (pipeline, run, file name, sha256, file_id, line and record number), the
                   record as it was (personal data masked), the column, the check, the reason,
                   and its replay state.

A record that fails several checks has several reject rows sharing one `row_number`; a
replay treats them as one record.
"""

from __future__ import annotations

from chute.ledger.files import latest_loaded_id

# chute.rejects.replay_state (its CHECK is in ledger/schema.py): pending (waiting for a fix),
# replayed (loaded by `chute replay`; never again), discarded (a person decided the record is not wanted).


# The reject records of one load unit are staged (binary COPY into a temporary table) and moved
# into chute.rejects by this statement, after the files' ledger rows, inside the load
# transaction: file_id comes from the ledger row just written.
STAGE_TABLE = "chute_stage_rejects"

COMMIT_REJECTS_SQL = """
INSERT INTO chute.rejects (pipeline, run_id, file_id, file_name, file_sha256, target_table, row_number,
                           line_number, column_name, check_name, reason, value, raw_record)
SELECT f.pipeline, f.run_id, f.file_id, s.file_name, s.file_sha256, s.target_table, s.row_number,
       s.line_number, s.column_name, s.check_name, s.reason, s.value, s.raw_record
  FROM chute_stage_rejects s
  JOIN chute.files f ON f.pipeline = $1 AND f.name = s.file_name AND f.sha256 = s.file_sha256
"""

COLUMNS = ("reject_id", "pipeline", "run_id", "file_id", "file_name", "file_sha256", "target_table", "row_number",
           "line_number", "column_name", "check_name", "reason", "value", "raw_record", "replay_state",
           "replayed_at", "replay_run_id", "created_at")


def rejects_command(pipeline: str) -> str:
    """The command that lists a pipeline's rejects. A project's name has no ':'; `chute load`
    names its loads load:SCHEMA.TABLE, and they need --pipeline (there is no chute.toml)."""
    return f"chute rejects list --pipeline {pipeline}" if ":" in pipeline else "chute rejects list"


def pending_records(conn, pipeline: str, file_name: str) -> int:
    """Pending records (one may have failed several checks) of the latest loaded version of a file."""
    file_id = latest_loaded_id(conn, pipeline, file_name)
    if file_id is None:
        return 0
    return conn.execute("SELECT count(DISTINCT row_number) FROM chute.rejects WHERE replay_state = 'pending'"
                        " AND file_id = %s", (file_id,)).fetchone()[0]


def pending_counts(conn, pipeline: str) -> tuple[int, int] | None:
    """(rows, failed checks) waiting in quarantine: a row failing two checks is one row and two
    records. None when chute.rejects does not exist."""
    if not conn.execute("SELECT to_regclass('chute.rejects') IS NOT NULL").fetchone()[0]:
        return None
    # Grouped, not count(DISTINCT (...)) (which sorts every record): index rejects_pending_rows.
    rows, checks = conn.execute(
        "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM chute.rejects"
        " WHERE pipeline = %s AND replay_state = 'pending' GROUP BY file_sha256, row_number) per_row",
        (pipeline,)).fetchone()
    return int(rows), int(checks)


def select_rejects(conn, pipeline: str, *, state: str | None = "pending", file: str | None = None,
                   column: str | None = None, reason: str | None = None, check: str | None = None,
                   ids: list[int] | tuple[int, ...] = (), limit: int | None = 100) -> list[dict]:
    """Rejects of a pipeline, oldest file and line first. `reason` matches a part of the text
    (case-insensitive); the other filters match exactly; `state` None or 'all' means any."""
    from psycopg import sql
    from psycopg.rows import dict_row

    where = [sql.SQL("pipeline = %s")]
    params: list = [pipeline]
    for name, value in (("replay_state", None if state in (None, "all") else state), ("file_name", file),
                        ("column_name", column), ("check_name", check)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(value)
    if reason:
        where.append(sql.SQL("reason ILIKE %s"))
        params.append("%" + reason.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if ids:
        where.append(sql.SQL("reject_id = ANY(%s)"))
        params.append(list(ids))
    query = sql.SQL("SELECT {} FROM chute.rejects WHERE {} ORDER BY file_id, row_number, reject_id").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.SQL(" AND ").join(where))
    if limit is not None:
        query += sql.SQL(" LIMIT %s")
        params.append(limit)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def export_rejects(conn, pipeline: str, out, **filters) -> int:
    """Write the matching rejects as CSV (with a header) to the binary file `out`; return the count."""
    import csv
    import io

    rows = select_rejects(conn, pipeline, limit=None, **filters)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    text.flush()
    text.detach()
    return len(rows)

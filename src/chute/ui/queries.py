"""Read-only SQL for the dashboard, over the ledger (schema `chute`) and the target tables.

Every connection is opened read-only (default_transaction_read_only) with a statement
timeout, so no page can change data or hang on a big table. Identifiers go through
psycopg.sql; values are parameters. Tables other features add (chute.rejects,
chute.dead_letters) are optional: absent means an empty page, not an error.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chute.db.postgres import existing_columns, qualified, redact
from chute.errors import DatabaseError
from chute.run.status import REJECTS, columns_of, table_exists

PAGE = 50  # rows per list page
STATEMENT_TIMEOUT_MS = 15_000


def connect_readonly(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10,
                               options=f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}")
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {redact(str(exc)).strip()}") from None


def _all(conn: psycopg.Connection, query: sql.Composable | str, params: Any = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _one(conn: psycopg.Connection, query: sql.Composable | str, params: Any = None) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def has_ledger(conn: psycopg.Connection) -> bool:
    return table_exists(conn, "files") and table_exists(conn, "runs")


# -- runs -----------------------------------------------------------------------------------
RUN_COLUMNS = sql.SQL("""run_id, trigger, status, started_at, ended_at,
    extract(epoch FROM coalesce(ended_at, now()) - started_at)::float AS seconds,
    files_seen, files_loaded, files_failed, files_skipped, rows_read, rows_loaded, rows_rejected,
    error, host, chute_version""")


def runs(conn: psycopg.Connection, pipeline: str, *, status: str | None = None, page: int = 0,
         limit: int = PAGE) -> list[dict]:
    where = sql.SQL("pipeline = %(p)s") + (sql.SQL(" AND status = %(s)s") if status else sql.SQL(""))
    return _all(conn, sql.SQL("SELECT {} FROM chute.runs WHERE {} ORDER BY run_id DESC LIMIT %(n)s OFFSET %(o)s")
                .format(RUN_COLUMNS, where), {"p": pipeline, "s": status, "n": limit, "o": page * limit})


def run(conn: psycopg.Connection, pipeline: str, run_id: int) -> dict | None:
    return _one(conn, sql.SQL("SELECT {}, details FROM chute.runs WHERE pipeline = %s AND run_id = %s")
                .format(RUN_COLUMNS), (pipeline, run_id))


def latest_timings(conn: psycopg.Connection, pipeline: str) -> dict[str, dict]:
    """Per node (or stage): the latest run that timed it and the seconds it took there."""
    rows = _all(conn, """
        SELECT DISTINCT ON (t.name) t.name, r.run_id, t.seconds::float AS seconds
          FROM chute.runs r, jsonb_each_text(coalesce(r.details->'timings', '{}'::jsonb)) AS t(name, seconds)
         WHERE r.pipeline = %s ORDER BY t.name, r.run_id DESC""", (pipeline,))
    return {r["name"]: r for r in rows}


def files_of_run(conn: psycopg.Connection, pipeline: str, run_id: int) -> list[dict]:
    return _all(conn, "SELECT file_id, name, status, size, rows_read, rows_loaded, rows_rejected, error"
                " FROM chute.files WHERE pipeline = %s AND run_id = %s ORDER BY name LIMIT 1000", (pipeline, run_id))


def run_progress(conn: psycopg.Connection, pipeline: str, run_id: int, limit: int = 200) -> list[dict]:
    """The files a run settled so far, in the order it settled them (the latest `limit`): a
    running run's log lines, read from the ledger, so any process's run shows here."""
    rows = _all(conn, "SELECT file_id, name, status, rows_loaded, rows_rejected, error, updated_at FROM chute.files"
                " WHERE pipeline = %s AND run_id = %s ORDER BY updated_at DESC, file_id DESC LIMIT %s",
                (pipeline, run_id, limit))
    return rows[::-1]


# -- files ----------------------------------------------------------------------------------
FILE_STATES = ("loaded", "loaded_with_rejects", "failed", "skipped")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def files(conn: psycopg.Connection, pipeline: str, *, search: str = "", status: str | None = None, page: int = 0,
          limit: int = PAGE) -> list[dict]:
    where = sql.SQL("pipeline = %(p)s")
    if search:
        where += sql.SQL(" AND (name ILIKE %(q)s OR sha256 ILIKE %(q)s)")
    if status:
        where += sql.SQL(" AND status = %(s)s")
    # A failed file a person resolved (chute forget; ledgers from before it have no such column).
    resolved = (sql.SQL("CASE WHEN resolved_at IS NOT NULL THEN resolution END AS resolution")
                if "resolution" in columns_of(conn, "files")
                else sql.SQL("NULL::text AS resolution"))
    return _all(conn, sql.SQL(
        "SELECT file_id, name, status, size, sha256, rows_read, rows_loaded, rows_rejected, run_id, attempts,"
        " updated_at, error, {} FROM chute.files WHERE {} ORDER BY updated_at DESC, file_id DESC"
        " LIMIT %(n)s OFFSET %(o)s").format(resolved, where),
        {"p": pipeline, "q": _like(search), "s": status, "n": limit, "o": page * limit})


def file(conn: psycopg.Connection, pipeline: str, file_id: int) -> dict | None:
    return _one(conn, "SELECT * FROM chute.files WHERE pipeline = %s AND file_id = %s", (pipeline, file_id))


def versions_of(conn: psycopg.Connection, pipeline: str, name: str) -> list[dict]:
    """Every version of a file name (each with the run that last settled it) with that run's row."""
    return _all(conn, """
        SELECT f.file_id, f.sha256, f.size, f.status, f.rows_loaded, f.rows_rejected, f.attempts, f.error,
               f.first_seen_at, f.updated_at, r.run_id, r.trigger, r.status AS run_status, r.started_at
          FROM chute.files f LEFT JOIN chute.runs r ON r.run_id = f.run_id
         WHERE f.pipeline = %s AND f.name = %s ORDER BY f.updated_at DESC""", (pipeline, name))


# -- quarantine (chute.rejects, when the quality feature created it) -------------------------
def rejects_present(conn: psycopg.Connection) -> bool:
    return table_exists(conn, REJECTS)


def reject_columns(conn: psycopg.Connection) -> set[str]:
    return columns_of(conn, REJECTS)


REJECT_EQUAL_FILTERS = ("file_id", "run_id", "column_name", "check_name", "replay_state", "target_table")


def _reject_filter(cols: set[str], pipeline: str, filters: dict[str, Any]) -> tuple[sql.Composable, dict]:
    where = [sql.SQL("TRUE")]
    params: dict[str, Any] = {"p": pipeline}
    if "pipeline" in cols:
        where.append(sql.SQL("r.pipeline = %(p)s"))
    for key in REJECT_EQUAL_FILTERS:
        value = filters.get(key)
        if value not in (None, "") and key in cols:
            where.append(sql.SQL("r.{} = %({})s").format(sql.Identifier(key), sql.SQL(key)))
            params[key] = value
    if filters.get("reason") and "reason" in cols:
        where.append(sql.SQL("r.reason ILIKE %(reason)s"))
        params["reason"] = _like(filters["reason"])
    if filters.get("file"):
        where.append(sql.SQL("r.file_name ILIKE %(file)s" if "file_name" in cols else "f.name ILIKE %(file)s"))
        params["file"] = _like(filters["file"])
    return sql.SQL(" AND ").join(where), params


def _rejects_from(cols: set[str]) -> sql.Composable:
    if "file_name" not in cols and "file_id" in cols:
        return sql.SQL("chute.rejects r LEFT JOIN chute.files f ON f.file_id = r.file_id")
    return sql.SQL("chute.rejects r")


def rejects(conn: psycopg.Connection, pipeline: str, filters: dict[str, Any], *, page: int = 0,
            limit: int | None = PAGE) -> list[dict]:
    cols = reject_columns(conn)
    where, params = _reject_filter(cols, pipeline, filters)
    name = sql.SQL(", f.name AS file_name") if "file_name" not in cols and "file_id" in cols else sql.SQL("")
    newest = next((c for c in ("reject_id", "id", "created_at") if c in cols), None)
    order = sql.SQL("r.{} DESC").format(sql.Identifier(newest)) if newest else sql.SQL("1")
    query = sql.SQL("SELECT r.*{} FROM {} WHERE {} ORDER BY {}").format(name, _rejects_from(cols), where, order)
    if limit is not None:
        query += sql.SQL(" LIMIT %(n)s OFFSET %(o)s")
        params.update(n=limit, o=page * limit)
    return _all(conn, query, params)


def reject_ids(conn: psycopg.Connection, pipeline: str, filters: dict[str, Any]) -> list[int]:
    """The ids of the rejects a filter shows: what a replay from the page acts on, exactly."""
    cols = reject_columns(conn)
    where, params = _reject_filter(cols, pipeline, filters)
    return [r["reject_id"] for r in _all(conn, sql.SQL("SELECT r.reject_id FROM {} WHERE {} ORDER BY 1")
                                         .format(_rejects_from(cols), where), params)]


FACET_LIMIT = 200


def reject_facets(conn: psycopg.Connection, pipeline: str) -> dict[str, list]:
    """The values the quarantine filters offer: columns, checks, reasons and replay states present."""
    cols = reject_columns(conn)
    where, params = _reject_filter(cols, pipeline, {})
    keys = [k for k in ("column_name", "check_name", "reason", "replay_state") if k in cols]
    if not keys:
        return {}
    # One pass over the rejects for the four menus (GROUPING SETS), not a SELECT DISTINCT each;
    # grouping(...) = 0 marks the rows of a key's set. At most FACET_LIMIT values a menu.
    found = _all(conn, sql.SQL("SELECT {}, {} FROM chute.rejects r WHERE {} GROUP BY GROUPING SETS ({})").format(
        sql.SQL(", ").join(sql.SQL("r.{} AS {}").format(sql.Identifier(k), sql.Identifier(k)) for k in keys),
        sql.SQL(", ").join(sql.SQL("grouping(r.{}) AS {}").format(sql.Identifier(k), sql.Identifier("g_" + k))
                           for k in keys),
        where, sql.SQL(", ").join(sql.SQL("(r.{})").format(sql.Identifier(k)) for k in keys))
        + sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(keys)))), params)
    # ORDER BY every key: each set's values come in the database's order (its collation).
    return {k: [r[k] for r in found if r["g_" + k] == 0 and r[k] is not None][:FACET_LIMIT] for k in keys}


def reject_count(conn: psycopg.Connection, pipeline: str, filters: dict[str, Any]) -> int:
    """Reject records (one per failed check) a filter shows."""
    return reject_counts(conn, pipeline, filters)[1]


def reject_counts(conn: psycopg.Connection, pipeline: str, filters: dict[str, Any]) -> tuple[int, int]:
    """(rows, failed checks) a filter shows: a row failing two checks is one row, two records."""
    cols = reject_columns(conn)
    where, params = _reject_filter(cols, pipeline, filters)
    if {"file_sha256", "row_number", "reject_id"} <= cols:  # a record without a row number is a row of its own
        # Grouped, not count(DISTINCT (...)), which sorts every record.
        found = _one(conn, sql.SQL(
            "SELECT count(*) AS rows, coalesce(sum(n), 0) AS checks FROM (SELECT count(*) AS n FROM {} WHERE {}"
            " GROUP BY r.file_sha256, coalesce(r.row_number, -r.reject_id)) per_row").format(
            _rejects_from(cols), where), params)
    else:
        found = _one(conn, sql.SQL("SELECT count(*) AS rows, count(*) AS checks FROM {} WHERE {}").format(
            _rejects_from(cols), where), params)
    return int(found["rows"]), int(found["checks"])


# -- target tables --------------------------------------------------------------------------
def table_info(conn: psycopg.Connection, schema: str, table: str, preview: int = 20) -> dict[str, Any]:
    """Columns, row count and the most recently written rows of one target table."""
    columns = existing_columns(conn, schema, table)
    if columns is None:
        return {"exists": False, "columns": {}, "rows": None, "estimated": False, "preview": []}
    name = qualified(schema, table)
    count, estimated = _row_count(conn, schema, table, name)
    return {"exists": True, "columns": columns, "rows": count, "estimated": estimated,
            "preview": _recent_rows(conn, schema, table, name, preview) if preview else []}


def _row_count(conn, schema: str, table: str, name: sql.Composable) -> tuple[int, bool]:
    estimate = _one(conn, "SELECT c.reltuples::bigint AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
                    " WHERE s.nspname = %s AND c.relname = %s", (schema, table))
    if estimate and estimate["n"] > 5_000_000:  # counting would scan it all: PostgreSQL's estimate is enough
        return int(estimate["n"]), True
    return int(_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(name))["n"]), False


def _recent_rows(conn, schema: str, table: str, name: sql.Composable, limit: int) -> list[dict]:
    """The last rows physically written: a TID range scan over the table's last pages, widened
    until enough rows show up (new rows go at the end of the heap; no full scan of a big table)."""
    pages = _one(conn, "SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS n"
                 " FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s"
                 " AND c.relname = %s", (schema, table))["n"]
    span = 8
    while True:
        start = max(0, pages - span)
        rows = _all(conn, sql.SQL("SELECT * FROM {} WHERE ctid >= %s::tid ORDER BY ctid DESC LIMIT %s")
                    .format(name), (f"({start},0)", limit))
        if len(rows) >= limit or start == 0:
            return rows
        span *= 8


# -- one table as an asset ------------------------------------------------------------------
def table_runs(conn: psycopg.Connection, pipeline: str, table: str, limit: int = 200) -> list[dict]:
    """The latest runs that wrote rows into `table` (chute.runs.details->'tables'), newest first."""
    return _all(conn, """
        SELECT run_id, trigger, status, started_at, ended_at,
               (details->'tables'->>%(t)s)::bigint AS rows
          FROM chute.runs
         WHERE pipeline = %(p)s AND details->'tables' ? %(t)s AND (details->'tables'->>%(t)s)::bigint > 0
         ORDER BY run_id DESC LIMIT %(n)s""", {"p": pipeline, "t": table, "n": limit})


def files_of_runs(conn: psycopg.Connection, pipeline: str, run_ids: list[int], limit: int = 20) -> list[dict]:
    """The files those runs settled, newest first."""
    if not run_ids:
        return []
    return _all(conn, "SELECT file_id, name, status, size, rows_loaded, rows_rejected, run_id, updated_at"
                " FROM chute.files WHERE pipeline = %s AND run_id = ANY(%s) ORDER BY updated_at DESC, file_id DESC"
                " LIMIT %s", (pipeline, run_ids, limit))


def table_rejects(conn: psycopg.Connection, pipeline: str, qualified_name: str) -> dict[str, Any] | None:
    """Pending rejects meant for `schema.table`, by check; None without chute.rejects."""
    if not rejects_present(conn) or "target_table" not in reject_columns(conn):
        return None
    rows = _all(conn, """
        SELECT check_name, count(*)::bigint AS n FROM chute.rejects
         WHERE pipeline = %s AND target_table = %s AND replay_state = 'pending'
         GROUP BY check_name ORDER BY n DESC, check_name""", (pipeline, qualified_name))
    return {"total": sum(r["n"] for r in rows), "checks": rows}


def load_tables(conn: psycopg.Connection) -> list[dict]:
    """Tables `chute load` wrote (pipelines named load:SCHEMA.TABLE), with their latest run."""
    return _all(conn, """
        SELECT DISTINCT ON (pipeline) pipeline, run_id, status, started_at, ended_at
          FROM chute.runs WHERE starts_with(pipeline, 'load:') ORDER BY pipeline, run_id DESC""")


# -- trends ---------------------------------------------------------------------------------
def runs_since(conn: psycopg.Connection, pipeline: str, since) -> list[dict]:
    """Every run started since `since` (None: all), oldest first, with what the trend charts need."""
    return _all(conn, """
        SELECT run_id, status, started_at,
               extract(epoch FROM coalesce(ended_at, now()) - started_at)::float AS seconds,
               files_loaded, files_failed, rows_loaded, coalesce(details->'tables', '{}'::jsonb) AS tables
          FROM chute.runs
         WHERE pipeline = %s AND (%s::timestamptz IS NULL OR started_at >= %s::timestamptz)
         ORDER BY run_id""", (pipeline, since, since))


# The trends page groups in SQL (a year of runs is too many rows to read into Python per page).
_RUNS_SINCE = """
    SELECT status, started_at, extract(epoch FROM coalesce(ended_at, now()) - started_at)::float AS seconds,
           files_loaded, files_failed, rows_loaded,
           CASE WHEN jsonb_typeof(details->'tables') = 'object' THEN details->'tables' ELSE '{}'::jsonb END AS tables
      FROM chute.runs
     WHERE pipeline = %(p)s AND (%(s)s::timestamptz IS NULL OR started_at >= %(s)s::timestamptz)"""
# Percentiles: percentile_disc is the nearest rank (the value at ceil(p * n)), as trends.percentile.
_RUN_SUMS = """
    count(*)::int AS runs, count(*) FILTER (WHERE status = 'failed')::int AS failed,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE status <> 'running') AS p50,
    percentile_disc(0.95) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE status <> 'running') AS p95,
    coalesce(sum(files_loaded), 0)::bigint AS files_loaded, coalesce(sum(files_failed), 0)::bigint AS files_failed,
    coalesce(sum(rows_loaded), 0)::bigint AS rows_loaded"""
_TABLE_ROWS = "trunc(coalesce(t.value::numeric, 0))::bigint"


def trend_summary(conn: psycopg.Connection, pipeline: str, since) -> dict:
    """The runs started since `since` (None: all) in all: trends.summary's numbers and the first start."""
    return _one(conn, f"SELECT min(started_at) AS first, {_RUN_SUMS} FROM ({_RUNS_SINCE}) r",
                {"p": pipeline, "s": since})


def trend_buckets(conn: psycopg.Connection, pipeline: str, since, starts: list) -> tuple[list[dict], list[dict]]:
    """Per bucket (1-based index into `starts`, width_bucket: the last start at or before the run's):
    the sums and percentiles of its runs; and per bucket and table, the rows written."""
    params = {"p": pipeline, "s": since, "starts": starts}
    bucket = "greatest(width_bucket(r.started_at, %(starts)s::timestamptz[]), 1)"
    sums = _all(conn, f"SELECT {bucket} AS bucket, {_RUN_SUMS} FROM ({_RUNS_SINCE}) r GROUP BY 1", params)
    tables = _all(conn, f"SELECT {bucket} AS bucket, t.key AS name, sum({_TABLE_ROWS})::bigint AS rows"
                        f" FROM ({_RUNS_SINCE}) r, jsonb_each_text(r.tables) t GROUP BY 1, 2", params)
    return sums, tables


def trend_tables(conn: psycopg.Connection, pipeline: str, since) -> list[dict]:
    """Per table the runs since `since` wrote: runs, rows, rows per run (median, largest)."""
    return _all(conn, f"""
        SELECT name AS table, count(*)::int AS runs, sum(n)::bigint AS rows,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY n) AS p50, max(n) AS max
          FROM (SELECT t.key AS name, {_TABLE_ROWS} AS n FROM ({_RUNS_SINCE}) r, jsonb_each_text(r.tables) t) x
         GROUP BY name""", {"p": pipeline, "s": since})


# -- schedules, triggers, watermarks --------------------------------------------------------
def schedule_stats(conn: psycopg.Connection, pipeline: str) -> dict[str, dict]:
    """Per schedule in chute.schedule_fires: the last fire, the fires and misses, the last miss."""
    if not table_exists(conn, "schedule_fires"):
        return {}
    rows = _all(conn, """
        SELECT schedule, max(due_at) FILTER (WHERE status = 'fired') AS last_fired,
               count(*) FILTER (WHERE status = 'fired')::int AS fired,
               count(*) FILTER (WHERE status = 'missed')::int AS missed,
               max(due_at) FILTER (WHERE status = 'missed') AS last_missed, max(cron) AS cron
          FROM chute.schedule_fires WHERE pipeline = %s GROUP BY schedule ORDER BY schedule""", (pipeline,))
    return {r["schedule"]: r for r in rows}


def schedule_fires(conn: psycopg.Connection, pipeline: str, limit: int = 30) -> list[dict]:
    """The latest fires and misses of every schedule, newest first."""
    if not table_exists(conn, "schedule_fires"):
        return []
    return _all(conn, "SELECT schedule, due_at, status, cron, noted_at, note FROM chute.schedule_fires"
                " WHERE pipeline = %s ORDER BY due_at DESC LIMIT %s", (pipeline, limit))


def watermarks(conn: psycopg.Connection, pipeline: str) -> list[dict]:
    """Every extraction's watermark row (a fan-out's keys as NAME|key=value rows)."""
    if not table_exists(conn, "watermarks"):
        return []
    return _all(conn, "SELECT extract, value, updated_at, last_started_at, last_rows, last_files, last_seconds,"
                " last_error FROM chute.watermarks WHERE pipeline = %s ORDER BY extract", (pipeline,))


def queue_states(conn: psycopg.Connection) -> dict[str, dict[str, int]]:
    """Messages by stage and state in chute.queue (all stages); {} without a chain."""
    if not table_exists(conn, "queue"):
        return {}
    out: dict[str, dict[str, int]] = {}
    for r in _all(conn, "SELECT stage, status, count(*)::int AS n FROM chute.queue GROUP BY 1, 2"):
        out.setdefault(r["stage"], {})[r["status"]] = r["n"]
    return out


def subscriptions(conn: psycopg.Connection) -> list[dict]:
    """Every chained stage: whom it follows, on what (rows of a table, or files), by which key."""
    if not table_exists(conn, "subscriptions"):
        return []
    return _all(conn, "SELECT stage, upstream, follows, source_schema, source_table, key FROM chute.subscriptions"
                " ORDER BY stage")


def dead_letter_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Open dead letters (dead or requeued) per pipeline."""
    if not table_exists(conn, "dead_letters"):
        return {}
    return {r["pipeline"]: r["n"] for r in _all(
        conn, "SELECT pipeline, count(*)::int AS n FROM chute.dead_letters WHERE status IN ('dead', 'requeued')"
              " GROUP BY 1")}


def stage_tables(conn: psycopg.Connection, pipelines: list[str]) -> dict[str, list[str]]:
    """The tables each pipeline's runs wrote (chute.runs.details->'tables'), for stages whose
    chute.toml the dashboard cannot read."""
    rows = _all(conn, """
        SELECT DISTINCT r.pipeline, t.name FROM chute.runs r, jsonb_object_keys(coalesce(r.details->'tables', '{}'))
               AS t(name) WHERE r.pipeline = ANY(%s) ORDER BY 1, 2""", (pipelines,))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["pipeline"], []).append(r["name"])
    return out

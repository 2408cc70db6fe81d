"""The numbers at the top of `chute status` and of the dashboard's overview page.

Files pending (in the landing zone, not yet settled in the ledger), failed, gone (failed, then
deleted from the landing zone: shown, not counted as failing), loaded; rejected rows; dead
letters and watch status. Quarantine, dead letters and `chute watch` come with
their own features: a table that is absent is reported as None ("not in use"), never an
error, so the overview works on any ledger.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chute.db.postgres import existing_columns
from chute.ledger import files as ledger
from chute.errors import ChuteError
from chute.quality.quarantine import pending_counts
from chute.config.project import Project
from chute.sources.base import FileEntry

# Tables other features add to the ledger schema; each is optional here.
REJECTS = "rejects"
DEAD_LETTERS = "dead_letters"
WORKERS = "workers"  # chute watch and workers register here while they load


def table_exists(conn: psycopg.Connection, table: str, schema: str = "chute") -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{_quote(schema)}.{_quote(table)}",)).fetchone()
    return bool(row and row[0])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'  # for to_regclass's text argument only


def columns_of(conn: psycopg.Connection, table: str, schema: str = "chute") -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                        " AND table_name = %s", (schema, table)).fetchall()
    return {r[0] for r in rows}


def count_for_pipeline(conn: psycopg.Connection, table: str, pipeline: str) -> int | None:
    """Rows of an optional chute.<table> for this pipeline (all rows if it has no pipeline column)."""
    if not table_exists(conn, table):
        return None
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("chute", table))
    params: tuple = ()
    columns = columns_of(conn, table)
    if "pipeline" in columns:
        query += sql.SQL(" WHERE pipeline = %s")
        params = (pipeline,)
    if table == DEAD_LETTERS and "status" in columns:  # only the ones still waiting: dead or requeued
        query += sql.SQL(" AND " if params else " WHERE ") + sql.SQL("status IN ('dead', 'requeued')")
    return int(conn.execute(query, params).fetchone()[0])


def listing(project: Project) -> list[FileEntry] | None:
    """The landing zone's files, or None when it cannot be listed now."""
    from chute.run.plan import landing_zone

    try:
        return landing_zone(project).list()
    except (OSError, ChuteError):
        return None


def pending_files(project: Project, conn: psycopg.Connection | None,
                  entries: list[FileEntry] | None = None) -> list[str]:
    """Names the next `chute run` would read: new or changed files its file filters accept."""
    from chute.run.plan import build_plan, provided_values

    entries = listing(project) if entries is None else entries
    if not entries:
        return []
    known = (ledger.known_files(conn, project.name, sorted({e.name for e in entries}))
             if conn is not None and ledger.schema_exists(conn) else {})  # the listed names' versions only
    pending = [e for e in entries
               if not any(k.size == e.size and k.mtime_ns == e.mtime_ns for k in known.get(e.name, ()))]
    if not pending:
        return []
    try:
        plan = build_plan(project)
        if plan.filters:
            static = plan.run_static(provided_values(project))
            pending = [e for e in pending if plan.wants(e.name, static) is None]
    except ChuteError:
        pass  # a miswired pipeline: the run will say so; count every new file
    return [e.name for e in pending]


def failures(conn: psycopg.Connection, pipeline: str, entries: list[FileEntry] | None,
             limit: int | None = None) -> list[dict[str, Any]]:
    """Files whose latest version failed and nobody resolved, newest first, each with its
    `state`: `failed`, or `gone` when its name is no longer in the landing zone (`entries`;
    None: the zone could not be listed, or there is none, as for `chute load`: all `failed`)."""
    present = None if entries is None else {e.name for e in entries}
    rows = ledger.failed_files(conn, pipeline, limit=limit) if ledger.schema_exists(conn) else []
    for row in rows:
        row["state"] = "gone" if present is not None and row["name"] not in present else "failed"
    return rows


def forget(conn: psycopg.Connection, pipeline: str, names: list[str] | set[str], resolution: str) -> list[str]:
    """Resolve the failed files `names` (`chute forget`): their ledger rows stay with their errors,
    marked resolved (when, how); their open dead letters are resolved too. One transaction."""
    from chute.ledger import deadletters

    with conn.transaction():
        versions = ledger.resolve_failed(conn, pipeline, names, resolution)
        if versions and table_exists(conn, DEAD_LETTERS):
            deadletters.resolve_files(conn, pipeline, versions, resolution)
    return sorted({name for name, _ in versions})


def watch_status(conn: psycopg.Connection, pipeline: str) -> dict[str, Any] | None:
    """What the ledger knows of `chute watch` and other triggers: workers holding a live lease
    (chute.workers, when present) and the latest run an event started. None when this
    pipeline has never run on an event and has no workers table."""
    workers = None
    if table_exists(conn, WORKERS):
        workers = int(conn.execute("SELECT count(*) FROM chute.workers WHERE pipeline = %s AND expires_at > now()",
                                   (pipeline,)).fetchone()[0])
    last = None
    if ledger.schema_exists(conn):
        with conn.cursor(row_factory=dict_row) as cur:
            last = cur.execute("SELECT run_id, trigger, status, started_at FROM chute.runs WHERE pipeline = %s"
                               " AND trigger NOT IN ('manual', 'ui', 'replay') ORDER BY run_id DESC LIMIT 1",
                               (pipeline,)).fetchone()
    if workers is None and last is None:
        return None
    state = "loading now" if workers else ("idle" if last else "no event-started run yet")
    return {"state": state, "active_workers": workers or 0, "last_event_run": last}


def overview(project: Project, conn: psycopg.Connection, entries: list[FileEntry] | None = None) -> dict[str, Any]:
    """Everything `chute status` and the dashboard put first (`entries`: the landing zone, when
    the caller listed it already). None means "feature not in use"."""
    has_ledger = ledger.schema_exists(conn)
    counts = ledger.file_counts(conn, project.name) if has_ledger else {}
    entries = listing(project) if entries is None else entries
    failed = failures(conn, project.name, entries)
    rejected = pending_counts(conn, project.name)
    return {
        "pipeline": project.name,
        "files": counts,
        "pending": len(pending_files(project, conn, entries)),
        "failed": sum(f["state"] == "failed" for f in failed),  # still in the landing zone
        "gone": sum(f["state"] == "gone" for f in failed),  # failed, then deleted: not failing any more
        "loaded": counts.get("loaded", 0) + counts.get("loaded_with_rejects", 0),
        "rejects": rejected[0] if rejected else None,  # rows, pending
        "rejected_checks": rejected[1] if rejected else None,  # the checks they failed (one row, several)
        "dead_letters": count_for_pipeline(conn, DEAD_LETTERS, project.name),
        "watch": watch_status(conn, project.name),
        "queue": queue_depth(conn, project.name),
    }


def queue_depth(conn: psycopg.Connection, pipeline: str) -> dict[str, dict[str, int]] | None:
    """Chained stages (chute.chain): messages by state for this stage and the stages that follow it."""
    from chute.ledger import queue

    if not queue.exists(conn):
        return None
    stages = {pipeline} | {s["stage"] for s in queue.subscribers(conn, pipeline)}
    depth = {stage: n for stage, n in queue.depth(conn).items() if stage in stages}
    return depth or None


def overview_line(numbers: dict[str, Any]) -> str:
    """One line of rich markup for `chute status`: the overview's numbers, features in use only."""
    def part(n: int, label: str, colour: str) -> str:
        return f"[bold {colour}]{n:,}[/] {label}" if n else f"{n:,} {label}"

    parts = [part(numbers["pending"], "pending", "cyan"), part(numbers["failed"], "failed", "red")]
    if numbers.get("gone"):
        parts.append(f"{numbers['gone']:,} failed and gone from the landing zone (chute forget --gone)")
    if numbers["rejects"] is not None:
        checks = numbers.get("rejected_checks") or 0
        parts.append(part(numbers["rejects"], "rejected rows in quarantine", "yellow")
                     + (f" ({checks:,} failed checks)" if checks > numbers["rejects"] else ""))
    if numbers["dead_letters"] is not None:
        parts.append(part(numbers["dead_letters"], "dead letters", "red"))
    if numbers["watch"] is not None:
        watch, last = numbers["watch"], numbers["watch"]["last_event_run"]
        parts.append(f"triggers: {watch['state']}" + (f" (last: run {last['run_id']} by {last['trigger']}, "
                                                      f"{last['status']})" if last else ""))
    return "  " + " · ".join(parts)


def inferred_tables(project: Project, conn: psycopg.Connection) -> dict[str, dict]:
    """The tables chute.toml leaves to inference: whether each exists yet, and the columns
    (name -> SQL type) it fixed when its first rows created it."""
    shown = {}
    for name, table in project.tables.items():
        if table.inferred:
            columns = existing_columns(conn, table.schema_, name)
            shown[name] = {"created": columns is not None, "columns": columns or {}}
    return shown

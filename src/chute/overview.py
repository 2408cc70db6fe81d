"""The numbers at the top of `chute status` and of the dashboard's overview page.

Files pending (in the landing zone, not yet settled in the ledger), failed, loaded; rejected
rows; dead letters and watch status. Quarantine, dead letters and `chute watch` come with
their own features: a table that is absent is reported as None ("not in use"), never an
error, so the overview works on any ledger.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from . import ledger
from .errors import ChuteError
from .project import Project

# Tables other features add to the ledger schema; each is optional here.
REJECTS = "rejects"
DEAD_LETTERS = "dead_letters"
WATCHERS = "watchers"


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
    if table == DEAD_LETTERS and "resolved_at" in columns:  # only the ones still waiting for a person
        query += sql.SQL(" AND resolved_at IS NULL" if params else " WHERE resolved_at IS NULL")
    return int(conn.execute(query, params).fetchone()[0])


def pending_files(project: Project, conn: psycopg.Connection | None) -> list[str]:
    """Names the next `chute run` would read: new or changed files its file filters accept."""
    from .runner import build_plan, landing_zone

    try:
        entries = landing_zone(project).list()
    except (OSError, ChuteError):
        return []
    known = ledger.known_files(conn, project.name) if conn is not None and ledger.schema_exists(conn) else {}
    pending = [e for e in entries
               if not any(k.size == e.size and k.mtime_ns == e.mtime_ns for k in known.get(e.name, ()))]
    if not pending:
        return []
    try:
        plan = build_plan(project)
        if plan.filters:
            provided: dict[str, Any] = {**project.params,
                                        **{n: project.path(p) for n, p in project.references.items()}}
            static = plan.run_static(provided)
            pending = [e for e in pending if plan.wants(e.name, static) is None]
    except ChuteError:
        pass  # a miswired pipeline: the run will say so; count every new file
    return [e.name for e in pending]


def watch_status(conn: psycopg.Connection, pipeline: str) -> dict[str, Any] | None:
    """The latest heartbeat of `chute watch` for this pipeline, when that feature records one."""
    if not table_exists(conn, WATCHERS):
        return None
    columns = columns_of(conn, WATCHERS)
    order = next((c for c in ("last_seen_at", "heartbeat_at", "updated_at", "started_at") if c in columns), None)
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier("chute", WATCHERS))
    params: tuple = ()
    if "pipeline" in columns:
        query += sql.SQL(" WHERE pipeline = %s")
        params = (pipeline,)
    if order:
        query += sql.SQL(" ORDER BY {} DESC NULLS LAST").format(sql.Identifier(order))
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query + sql.SQL(" LIMIT 1"), params).fetchone()
    return dict(row) if row else {}


def _failed_count(conn: psycopg.Connection, pipeline: str) -> int:
    """File names whose latest version failed (as ledger.failed_files lists them)."""
    return int(conn.execute(
        "SELECT count(*) FROM (SELECT DISTINCT ON (name) status FROM chute.files WHERE pipeline = %s"
        " ORDER BY name, updated_at DESC) latest WHERE status = 'failed'", (pipeline,)).fetchone()[0])


def overview(project: Project, conn: psycopg.Connection) -> dict[str, Any]:
    """Everything `chute status` and the dashboard put first. None means "feature not in use"."""
    has_ledger = ledger.schema_exists(conn)
    counts = ledger.file_counts(conn, project.name) if has_ledger else {}
    failed = _failed_count(conn, project.name) if has_ledger else 0
    rejected = count_for_pipeline(conn, REJECTS, project.name)
    return {
        "pipeline": project.name,
        "files": counts,
        "pending": len(pending_files(project, conn)),
        "failed": failed,
        "loaded": counts.get("loaded", 0) + counts.get("loaded_with_rejects", 0),
        "rejects": rejected,
        "dead_letters": count_for_pipeline(conn, DEAD_LETTERS, project.name),
        "watch": watch_status(conn, project.name),
    }


def overview_line(numbers: dict[str, Any]) -> str:
    """One line of rich markup for `chute status`: the overview's numbers, features in use only."""
    def part(n: int, label: str, colour: str) -> str:
        return f"[bold {colour}]{n:,}[/] {label}" if n else f"{n:,} {label}"

    parts = [part(numbers["pending"], "pending", "cyan"), part(numbers["failed"], "failed", "red")]
    if numbers["rejects"] is not None:
        parts.append(part(numbers["rejects"], "rejected rows in quarantine", "yellow"))
    if numbers["dead_letters"] is not None:
        parts.append(part(numbers["dead_letters"], "dead letters", "red"))
    if numbers["watch"] is not None:
        watch = numbers["watch"]
        parts.append("watch: " + str(watch.get("status") or watch.get("state") or ("seen" if watch else "not running")))
    return "  " + " · ".join(parts)

"""The dashboard: a FastAPI app over one project's ledger, rendered with Jinja2 and htmx.

Pages read the database through queries.py (read-only connections). Actions (start a run,
retry failed files, run an extraction or a backfill window, replay quarantined rows) are POSTs
with a CSRF token, each after a page saying what it will do, and go through the same code
paths as `chute run`, `chute run --retry-failed`, `chute extract [--since/--until]` and
`chute replay`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from urllib.parse import urlencode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from chute import __version__
from chute.db.postgres import redact
from chute.errors import ChuteError, DatabaseError
from chute.run.status import overview, watch_status
from chute.config.project import Project, load_project
from chute.ui import assets, trends, triggers
from chute.ui import queries as q
from chute.ui.filters import duration, install_filters, number
from chute.ui.security import Guard
from chute.ui.svg import Series, bar_chart, graph_svg, line_chart, lineage_graph, pipeline_graph

HERE = Path(__file__).parent
REJECT_FILTERS = ("file", "column_name", "check_name", "reason", "replay_state", "file_id", "run_id", "target_table")
LOG_LIMIT = 256 * 1024  # bytes of a run log shown on its page
LOG_GRACE = 30  # seconds a finished run's page keeps polling for its run log


class Dashboard:
    """What every page needs: the project, the database URL and the running actions."""

    def __init__(self, project: Project, db_url: str):
        self.project = project
        self.db_url = db_url
        self.action_lock = threading.Lock()
        self.action: dict[str, Any] | None = None  # the last action started from the dashboard
        self.history: list[dict[str, Any]] = []  # the latest actions, newest first (this process only)

    def conn(self):
        return q.connect_readonly(self.db_url)

    def current(self) -> Project:
        """The project as chute.toml says now: a user fixes a contract, then replays from the page."""
        try:
            self.project = load_project(self.project.root)
        except ChuteError:
            pass  # half-edited chute.toml: keep showing the last good one
        return self.project


def create_app(project: Project, db_url: str, *, token: str | None = None, secure_cookies: bool = False) -> FastAPI:
    app = FastAPI(title=f"chute: {project.name}", docs_url=None, redoc_url=None, openapi_url=None)
    board = Dashboard(project, db_url)
    app.state.board = board
    templates = Jinja2Templates(directory=HERE / "templates")
    install_filters(templates.env)
    app.add_middleware(Guard, token=token, secure_cookies=secure_cookies)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.update(project=project, version=__version__, database=redact(db_url),
                       csrf_token=request.state.csrf_token, action=board.action,
                       nav=context.get("nav", name.split(".")[0].split("_")[0]))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(DatabaseError)
    async def database_down(request: Request, exc: DatabaseError):
        return render(request, "error.html", 503, message=redact(str(exc)), nav="")

    # -- overview ------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        now = _now()
        with board.conn() as conn:
            numbers = overview(project, conn)
            ledger = q.has_ledger(conn)
            month = q.runs_since(conn, project.name, trends.since("month", now)) if ledger else []
            recent = q.runs(conn, project.name, limit=5) if ledger else []
        spans = trends.buckets(month, now)
        charts = _activity_charts(spans) if spans else None
        return render(request, "overview.html", numbers=numbers, charts=charts, totals=trends.summary(month),
                      recent=recent, ledger=ledger, step=spans[0].step if spans else None)

    # -- trends --------------------------------------------------------------------------
    @app.get("/trends", response_class=HTMLResponse)
    def trends_page(request: Request, range_: str = Query("week", alias="range")):
        if range_ not in trends.RANGES:
            raise HTTPException(422, f"range is one of {', '.join(trends.RANGES)}")
        now = _now()
        since = trends.since(range_, now)
        spans, totals, tables = [], trends.summary([]), []
        with board.conn() as conn:  # grouped in SQL: a year of runs is too many to read per page
            first = q.trend_summary(conn, project.name, since) if q.has_ledger(conn) else None
            if first and first["runs"]:
                axis = trends.axis(first["first"], now)
                sums, per_bucket = q.trend_buckets(conn, project.name, since, [b.start for b in axis])
                spans, totals, tables = trends.from_sql(first, sums, per_bucket,
                                                        q.trend_tables(conn, project.name, since), axis)
        charts = _trend_charts(spans, [t["table"] for t in tables]) if spans else None
        return render(request, "trends.html", range=range_, ranges=list(trends.RANGES), charts=charts,
                      totals=totals, tables=tables, step=spans[0].step if spans else None)

    # -- schedules and triggers ----------------------------------------------------------
    @app.get("/schedules", response_class=HTMLResponse)
    def schedules_page(request: Request):
        project = board.current()
        now = _now()
        with board.conn() as conn:
            stats = q.schedule_stats(conn, project.name)
            fires = q.schedule_fires(conn, project.name)
            marks = q.watermarks(conn, project.name)
            watch = watch_status(conn, project.name)
            queue = q.queue_states(conn).get(project.name) if project.follow else None
        return render(request, "schedules.html", schedules=triggers.schedules(project, stats, now), fires=fires,
                      landing=triggers.landing(project), s3=triggers.s3_queue(project), watch=watch,
                      follow=project.follow, queue=queue, extractions=triggers.watermarks(project, marks))

    # -- runs ----------------------------------------------------------------------------
    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request, status: str | None = None, page: int = 0):
        with board.conn() as conn:
            rows = q.runs(conn, project.name, status=status or None, page=page) if q.has_ledger(conn) else []
        return render(request, "runs.html", runs=rows, status=status or "", page=page, more=len(rows) == q.PAGE)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int):
        with board.conn() as conn:
            run = q.run(conn, project.name, run_id) if q.has_ledger(conn) else None
            if run is None:
                raise HTTPException(404, f"no run {run_id} of {project.name}")
            files = q.files_of_run(conn, project.name, run_id)
            progress = q.run_progress(conn, project.name, run_id) if run["status"] == "running" else []
            rejected = (q.reject_counts(conn, project.name, {"run_id": run_id})[0]
                        if q.rejects_present(conn) and "run_id" in q.reject_columns(conn) else None)
            log = _run_log(project, run_id) if run["status"] != "running" else None
            notifications = _notifications(conn, run, log)
        details = run["details"] or {}
        timings = sorted(((k, float(v)) for k, v in (details.get("timings") or {}).items()), key=lambda kv: -kv[1])
        # Poll while it runs, and a little after: the run log is written just after the run row ends.
        ended = run["ended_at"]
        awaiting_log = (log is None and project.run_log.enabled and ended is not None
                        and (_now() - ended).total_seconds() < LOG_GRACE)
        context = dict(run=run, files=files, timings=timings, rejected=rejected, notifications=notifications, log=log,
                       poll=run["status"] == "running" or awaiting_log, awaiting_log=awaiting_log,
                       progress=progress, log_lines=_log_lines(log), tables=details.get("tables") or {},
                       other_details={k: v for k, v in details.items() if k not in ("timings", "notifications",
                                                                                   "tables")},
                       nav="runs")
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "run-body":
            return render(request, "run_body.html", **context)  # the running run's page, polled
        return render(request, "run.html", **context)

    # -- files ---------------------------------------------------------------------------
    @app.get("/files", response_class=HTMLResponse)
    def files(request: Request, search: str = "", status: str | None = None, page: int = 0):
        text = search.strip()
        with board.conn() as conn:
            rows = (q.files(conn, project.name, search=text, status=status or None, page=page)
                    if q.has_ledger(conn) else [])
        context = dict(files=rows, search=text, status=status or "", states=q.FILE_STATES, page=page,
                       more=len(rows) == q.PAGE)
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "file-rows":
            return render(request, "files_rows.html", **context, nav="files")
        return render(request, "files.html", **context)

    @app.get("/files/{file_id}", response_class=HTMLResponse)
    def file_page(request: Request, file_id: int):
        with board.conn() as conn:
            f = q.file(conn, project.name, file_id) if q.has_ledger(conn) else None
            if f is None:
                raise HTTPException(404, f"no file {file_id} in the ledger of {project.name}")
            versions = q.versions_of(conn, project.name, f["name"])
            present = q.rejects_present(conn) and "file_id" in q.reject_columns(conn)
            rejects = q.rejects(conn, project.name, {"file_id": file_id}, limit=100) if present else []
            reject_rows, reject_total = q.reject_counts(conn, project.name, {"file_id": file_id}) if present else (0, 0)
        return render(request, "file.html", file=f, versions=versions, rejects=rejects, reject_total=reject_total,
                      reject_rows=reject_rows,
                    rejects_present=present, nav="files")

    # -- quarantine ----------------------------------------------------------------------
    def reject_filters(params) -> dict[str, Any]:
        """The quarantine's filters from a query string or a form: file, column, check, reason, state, ids."""
        out: dict[str, Any] = {k: str(params.get(k, "")).strip() for k in REJECT_FILTERS}
        for key in ("file_id", "run_id"):
            out[key] = int(out[key]) if out[key].isdigit() else None
        return out

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, page: int = 0, replayed: str = ""):
        filters = reject_filters(request.query_params)
        with board.conn() as conn:
            present = q.rejects_present(conn)
            rows = q.rejects(conn, project.name, filters, page=page) if present else []
            total_rows, total = q.reject_counts(conn, project.name, filters) if present else (0, 0)
            facets = q.reject_facets(conn, project.name) if present else {}
            columns = _reject_display_columns(q.reject_columns(conn)) if present else []
        return render(request, "quarantine.html", present=present, rejects=rows, total=total, total_rows=total_rows,
                      facets=facets,
                      filters=filters, columns=columns, page=page, more=len(rows) == q.PAGE,
                      replay_available=_replay_function() is not None, replayed=replayed)

    @app.get("/quarantine.csv")
    def quarantine_csv(request: Request):
        filters = reject_filters(request.query_params)

        def rows() -> Iterator[str]:
            with board.conn() as conn:
                if not q.rejects_present(conn):
                    return
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                first = True
                for row in q.rejects(conn, project.name, filters, limit=None):
                    if first:
                        writer.writerow(row.keys())
                        first = False
                    writer.writerow([json.dumps(v, default=str) if isinstance(v, (dict, list)) else v
                                     for v in row.values()])
                    if buffer.tell() > 1 << 16:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
                yield buffer.getvalue()

        return StreamingResponse(rows(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{project.name}-rejects.csv"'})

    @app.get("/quarantine/replay", response_class=HTMLResponse)
    def confirm_replay(request: Request):
        """What a replay of the page's rows will do, said before it is done (the POST does it)."""
        if _replay_function() is None:
            raise HTTPException(501, "this chute has no quarantine replay")
        filters = reject_filters(request.query_params)
        with board.conn() as conn:
            ids = q.reject_ids(conn, project.name, {**filters, "replay_state": "pending"})
            rows = q.rejects(conn, project.name, {**filters, "replay_state": "pending"}, limit=1000) if ids else []
        files = sorted({r["file_name"] for r in rows})
        kept = {k: v for k, v in request.query_params.items() if k in REJECT_FILTERS and v}
        return render(request, "confirm_replay.html", count=len(ids), files=files, kept=kept,
                      back=f"/quarantine?{urlencode(kept)}", nav="quarantine")

    @app.post("/quarantine/replay")
    async def quarantine_replay(request: Request):
        form = await request.form()
        _check_csrf(request, str(form.get("csrf_token", "")))
        replay = _replay_function()
        if replay is None:
            raise HTTPException(501, "this chute has no quarantine replay")
        # Exactly the pending rejects the page shows, by id: the same path as `chute replay --id`.
        with board.conn() as conn:
            ids = q.reject_ids(conn, project.name, {**reject_filters(form), "replay_state": "pending"})
        if not ids:
            message = "nothing to replay: no pending rejected row matches these filters"
        else:
            try:
                result = await run_in_threadpool(lambda: replay(board.current(), db_url, ids=ids))
                message = _describe_replay(result, len(ids))
            except ChuteError as exc:
                message = f"replay failed, nothing was loaded: {redact(str(exc))}"
        kept = {k: v for k, v in form.items() if k in REJECT_FILTERS and v}
        return RedirectResponse(f"/quarantine?{urlencode({**kept, 'replayed': message[:400]})}", status_code=303)

    # -- actions -------------------------------------------------------------------------
    # Each action is a GET that says what it will do (the confirmation) and a POST, with the
    # CSRF token, that starts it in the background; the result is on /actions and in the
    # notice atop every page. One action at a time.
    @app.get("/actions/confirm", response_class=HTMLResponse)
    def confirm_action(request: Request, do: str, name: str = "", since: str = "", until: str = ""):
        project = board.current()
        with board.conn() as conn:
            plan = _describe_action(project, conn, do, name, since.strip(), until.strip())
        return render(request, "confirm.html", plan=plan, nav="")

    @app.post("/actions/{do}")
    def start_action(request: Request, do: str, csrf_token: str = Form(""), name: str = Form(""),
                     since: str = Form(""), until: str = Form("")):
        _check_csrf(request, csrf_token)
        project = board.current()
        if do not in ACTIONS or do in ("extract", "backfill") and name not in project.extract:
            raise HTTPException(404, f"no action {do} {name}".strip())
        if do == "backfill" and not (since.strip() or until.strip()):
            raise HTTPException(422, "a backfill needs a window: since, until or both")
        label = _action_label(do, name, since.strip(), until.strip())
        with board.action_lock:
            if board.action and board.action.get("state") == "running":
                return RedirectResponse("/actions", status_code=303)
            board.action = {"name": label, "state": "running", "kind": do, "started": _now()}
            board.history.insert(0, board.action)
            del board.history[20:]
        threading.Thread(target=_act, args=(board, board.action, do, name, since.strip() or None,
                                            until.strip() or None),
                         daemon=True, name=f"chute-ui-{do}").start()
        return RedirectResponse("/runs" if do == "retry" else "/actions", status_code=303)

    @app.get("/actions", response_class=HTMLResponse)
    def actions_page(request: Request):
        running = bool(board.action and board.action.get("state") == "running")
        context = dict(history=board.history, running=running, nav="actions")
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "actions-box":
            return render(request, "actions_list.html", **context)
        return render(request, "actions.html", **context)

    # -- pipeline ------------------------------------------------------------------------
    @app.get("/pipeline", response_class=HTMLResponse)
    def pipeline(request: Request):
        from chute.run.plan import build_plan

        project = board.current()
        with board.conn() as conn:
            timings = q.latest_timings(conn, project.name) if q.has_ledger(conn) else {}
        try:
            plan = build_plan(project)
        except ChuteError as exc:
            return render(request, "pipeline.html", error=redact(str(exc)), graph=None, plan=None, timings=timings)
        tables = {name: f"{t.schema_}.{name}" for name, t in project.tables.items()}
        graph = pipeline_graph(plan, set(project.references), set(project.params), tables,
                               lambda node: f"/runs/{timings[node]['run_id']}#node-{node}" if node in timings else None)
        nodes = [(n, "once per run" if n in plan.static else "per batch") for n in [*plan.static, *plan.batch]]
        return render(request, "pipeline.html", error=None, graph=graph_svg(graph), plan=plan, nodes=nodes,
                      timings=timings)

    # -- lineage across chained stages -----------------------------------------------------
    @app.get("/lineage", response_class=HTMLResponse)
    def lineage(request: Request):
        project = board.current()
        with board.conn() as conn:
            subs = q.subscriptions(conn)
            stages = _chain_of(project.name, subs)
            queues = q.queue_states(conn)
            dead = q.dead_letter_counts(conn)
            written = q.stage_tables(conn, stages) if q.has_ledger(conn) else {}
        tables = {**written, project.name: list(project.tables)}
        graph = lineage_graph(project.name, stages, subs, tables, queues, dead) if len(stages) > 1 else None
        rows = [{"stage": st, "follows": next((x for x in subs if x["stage"] == st), None),
                 "queue": queues.get(st, {}), "dead": dead.get(st, 0), "tables": tables.get(st, [])} for st in stages]
        return render(request, "lineage.html", graph=graph_svg(graph) if graph else None, stages=rows)

    # -- tables --------------------------------------------------------------------------
    @app.get("/tables", response_class=HTMLResponse)
    def tables(request: Request):
        project = board.current()
        now = _now()
        with board.conn() as conn:
            infos = [assets.summary(conn, a, now) for a in assets.project_assets(project)]
            loads = ([assets.summary(conn, a, now) for a in
                      filter(None, (assets.load_asset(r["pipeline"]) for r in q.load_tables(conn)))]
                     if q.has_ledger(conn) else [])
        return render(request, "tables.html", tables=infos, loads=loads)

    @app.get("/tables/{key}", response_class=HTMLResponse)
    def table_page(request: Request, key: str):
        project = board.current()
        asset = assets.find(project, key)
        if asset is None:
            raise HTTPException(404, f"no table {key} in {project.name} (nor a table `chute load` wrote)")
        now = _now()
        with board.conn() as conn:
            t = assets.summary(conn, asset, now, deep=True)
        if asset.loaded_by_command and not t["runs"] and not t["exists"]:
            raise HTTPException(404, f"`chute load` never loaded {asset.qualified}")
        history = list(reversed(t["runs"]))
        spans = trends.buckets(history, now)
        chart = (bar_chart(spans, [Series("rows written", "s-rows", [b.total("rows") for b in spans])],
                           label=f"rows written into {asset.qualified} over time", chart_id="table-history")
                 if spans else None)
        return render(request, "table.html", t=t, asset=asset, chart=chart, nav="tables")

    return app


def _activity_charts(spans: list[trends.Bucket], files_height: int = 120) -> dict[str, Markup]:
    """Rows loaded, and files loaded and failed, per bucket: the overview's two charts."""
    return {
        "rows": bar_chart(spans, [Series("rows loaded", "s-rows", [b.total("rows_loaded") for b in spans])],
                          label="rows loaded over time", chart_id="chart-rows"),
        "files": bar_chart(spans, [Series("files loaded", "s-files", [b.total("files_loaded") for b in spans]),
                                   Series("files failed", "s-failed", [b.total("files_failed") for b in spans])],
                           label="files loaded and failed over time", chart_id="chart-files", height=files_height),
    }


TABLE_COLOURS = 5  # t0..t4 in chute.css; more tables than that share the last colour as "other tables"


def _trend_charts(spans: list[trends.Bucket], tables: list[str]) -> dict[str, Any]:
    shown, rest = tables[:TABLE_COLOURS - 1] if len(tables) > TABLE_COLOURS else tables, tables[TABLE_COLOURS - 1:]
    series = [Series(name, f"t{i}", [b.table_rows(name) for b in spans]) for i, name in enumerate(shown)]
    if len(tables) > TABLE_COLOURS:
        series.append(Series("other tables", f"t{TABLE_COLOURS - 1}",
                             [sum(b.table_rows(n) for n in rest) for b in spans]))
    p50 = [b.duration_percentile(50) for b in spans]
    p95 = [b.duration_percentile(95) for b in spans]
    activity = _activity_charts(spans, files_height=170)
    return {
        "tables": series,
        "rows": bar_chart(spans, series, label="rows written per table over time", chart_id="chart-table-rows"),
        "duration": line_chart(spans, [Series("p50", "s-p50", p50), Series("p95", "s-p95", p95)],
                               label="run duration, median and 95th percentile", chart_id="chart-duration",
                               fmt=duration),
        "files": activity["files"],
        "rows_all": activity["rows"],
    }


def _chain_of(name: str, subscriptions: list[dict]) -> list[str]:
    """Every stage connected to `name` through chute.subscriptions, upstream first."""
    links = [(s["upstream"], s["stage"]) for s in subscriptions]
    found, todo = {name}, [name]
    while todo:
        here = todo.pop()
        for a, b in links:
            for there in ((b,) if a == here else (a,) if b == here else ()):
                if there not in found:
                    found.add(there)
                    todo.append(there)
    depth: dict[str, int] = {}

    def level(stage: str, seen: frozenset = frozenset()) -> int:
        if stage not in depth:
            ups = [a for a, b in links if b == stage and a in found and a not in seen]
            depth[stage] = 1 + max((level(u, seen | {stage}) for u in ups), default=-1)
        return depth[stage]

    return sorted(found, key=lambda st: (level(st), st))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _check_csrf(request: Request, value: str) -> None:
    if not request.state.csrf_ok(value):
        raise HTTPException(403, "the form is stale or did not come from this dashboard (CSRF check): reload the page")


ACTIONS = {"run": "start a run", "retry": "retry failed files", "extract": "run extraction",
           "backfill": "backfill extraction", "replay": "replay rejects"}


def _action_label(do: str, name: str, since: str, until: str) -> str:
    if do == "backfill":
        window = " ".join(p for p in (f"since {since}" if since else "", f"until {until}" if until else "") if p)
        return f"backfill extraction {name} {window}"
    return f"{ACTIONS[do]} {name}".strip()


def _describe_action(project: Project, conn, do: str, name: str, since: str, until: str) -> dict[str, Any]:
    """What an action will do, said before it is done: the confirmation page's content."""
    from chute.ledger.watermarks import describe
    from chute.run.status import pending_files

    if do not in ACTIONS or do == "replay":
        raise HTTPException(404, f"no action {do}" + (" here: replay from the quarantine page" if do == "replay"
                                                       else ""))
    facts: list[str] = []
    if do == "run":
        pending = pending_files(project, conn)
        facts = [f"chute run for {project.name}, trigger ui: reads the landing zone and loads what is new.",
                 f"{len(pending):,} file(s) are pending now" + (f": {', '.join(pending[:5])}"
                                                              f"{' …' if len(pending) > 5 else ''}" if pending else ".")]
    elif do == "retry":
        failed = ledger_failed(conn, project.name)
        facts = ["chute run --retry-failed: files whose latest version failed are read again.",
                 f"{failed:,} file(s) failed."]
    else:
        if name not in project.extract:
            raise HTTPException(404, f"no extraction named {name!r} in chute.toml")
        rows = q.watermarks(conn, project.name)
        mark = next((r["value"] for r in rows if r["extract"] == name), None)
        if do == "extract":
            facts = [f"chute extract {name}: fetches what is new since the watermark into the landing zone.",
                     f"watermark now: {describe(mark)}; it moves when the extraction ends without error.",
                     "The part files are loaded by the next run (start one from here, or the watch does)."]
        else:
            facts = [f"chute extract {name} over a window: rows whose cursor is ≥ since and < until.",
                     f"The watermark stays where it is ({describe(mark)}).",
                     "Parts the ledger has already loaded (same bytes) are skipped by the next run."]
    return {"do": do, "name": name, "since": since, "until": until, "label": _action_label(do, name, since, until),
            "facts": facts, "needs_window": do == "backfill" and not (since or until)}


def ledger_failed(conn, pipeline: str) -> int:
    from chute.ledger.files import failed_count

    return failed_count(conn, pipeline) if q.has_ledger(conn) else 0


def _act(board: Dashboard, record: dict[str, Any], do: str, name: str, since: str | None, until: str | None) -> None:
    """Run an action in the background and record what it did in `record` (shown on /actions)."""
    from chute.ledger.watermarks import describe

    try:
        if do in ("run", "retry"):
            from chute.run.runner import Runner

            summary = Runner(board.current(), board.db_url, trigger="ui", retry_failed=do == "retry").run()
            record.update(state=summary.status, run_id=summary.run_id,
                          error=redact(summary.error) if summary.error else None,
                          did=f"run {summary.run_id}: {summary.count('loaded'):,} file(s) loaded, "
                              f"{summary.count('failed'):,} failed, {summary.rows_loaded:,} rows written")
        else:
            from chute.extract import run_extract

            report = run_extract(board.current(), name, since=since, until=until, db_url=board.db_url)
            did = f"{len(report.files):,} part file(s) written, {report.rows:,} rows"
            did += (", watermark left alone (backfill)" if report.backfill else
                    f", watermark {describe(report.watermark_before)} → {describe(report.watermark_after)}")
            record.update(state="succeeded" if report.ok else "failed", did=did,
                          error=redact(report.error) if report.error else None, files=report.files[:20])
    except ChuteError as exc:
        record.update(state="failed", error=redact(str(exc)))
    except Exception as exc:  # never leave the action 'running' forever
        record.update(state="failed", error=redact(f"{type(exc).__name__}: {exc}"))
    record["ended"] = _now()


def _run_log(project: Project, run_id: int) -> dict[str, Any] | None:
    """logs/run-<id>.json of the project (or its [run_log] folder), when the run wrote one;
    shown redacted and size-capped, with its parsed document when it is JSON."""
    config = getattr(project, "run_log", None)
    folder = project.path(getattr(config, "folder", None) or "logs")
    path = folder / f"run-{run_id}.json"
    if not path.is_file():
        return None
    data = path.read_bytes()[:LOG_LIMIT].decode("utf-8", "replace")
    try:
        document = json.loads(data)
        text = json.dumps(document, indent=2, default=str)
    except json.JSONDecodeError:
        document, text = None, data
    return {"path": str(path.relative_to(project.root)) if path.is_relative_to(project.root) else str(path),
            "text": redact(text), "truncated": path.stat().st_size > LOG_LIMIT,
            "document": document if isinstance(document, dict) else {}}


def _log_lines(log: dict[str, Any] | None) -> list[dict[str, str]]:
    """A finished run's JSON log as lines a person reads: the outcome, each file, the errors."""
    doc = (log or {}).get("document") or {}
    if not doc:
        return []
    lines = [{"level": "error" if doc.get("status") == "failed" else "info",
              "text": f"run {doc.get('run_id')} {doc.get('status')} in {duration(doc.get('seconds'))}: "
                      f"{len(doc.get('files') or [])} file(s) read, {number(doc.get('rows_loaded'))} rows loaded, "
                      f"{number(doc.get('rows_rejected'))} rejected"}]
    if doc.get("unchanged") or doc.get("excluded"):
        lines.append({"level": "info", "text": f"{number(doc.get('unchanged') or 0)} file(s) unchanged (already loaded),"
                                               f" {number(doc.get('excluded') or 0)} left out by a file filter"})
    for f in doc.get("files") or []:
        text = f"{f.get('name')}: {str(f.get('status', '')).replace('_', ' ')}"
        if f.get("rows_loaded") is not None:
            text += f", {number(f.get('rows_loaded'))} rows loaded"
        if f.get("rows_rejected"):
            text += f", {number(f.get('rows_rejected'))} rejected"
        if f.get("error"):
            text += f": {f.get('error')}"
        lines.append({"level": "error" if f.get("status") == "failed" else "info", "text": redact(text)})
    if doc.get("error"):
        lines.append({"level": "error", "text": redact(str(doc["error"]))})
    for name in doc.get("exports") or []:
        lines.append({"level": "info", "text": f"exported {name}"})
    return lines


def _notifications(conn, run: dict, log: dict[str, Any] | None) -> list[dict]:
    """Notifications recorded for a run: in its details, its run log, or chute.notifications."""
    found: list[dict] = []
    for recorded in ((run.get("details") or {}).get("notifications"), (log or {}).get("document", {}).get("notifications")):
        if isinstance(recorded, dict):
            recorded = [recorded]
        found += [dict(n) if isinstance(n, dict) else {"notification": str(n)} for n in recorded or []]
    if q.table_exists(conn, "notifications") and "run_id" in q.columns_of(conn, "notifications"):
        from psycopg import sql
        from psycopg.rows import dict_row

        with conn.cursor(row_factory=dict_row) as cur:
            found += cur.execute(sql.SQL("SELECT * FROM {} WHERE run_id = %s ORDER BY 1").format(
                sql.Identifier("chute", "notifications")), (run["run_id"],)).fetchall()
    return [{k: redact(str(v)) for k, v in n.items()} for n in found]


def _reject_display_columns(cols: set[str]) -> list[str]:
    preferred = ["file_name", "line_number", "column_name", "check_name", "reason", "value", "raw_record",
                 "replay_state", "run_id", "created_at"]
    return [c for c in preferred if c in cols or c == "file_name" and "file_id" in cols]


def _replay_function():
    """chute.quality's replay, the same path `chute replay` takes (absent until that feature lands)."""
    try:
        from chute.run.replay import replay
    except ImportError:
        return None
    return replay


def _describe_replay(result: Any, selected: int) -> str:
    files = getattr(result, "files", [])
    replayed = sum(f.get("records_replayed", 0) for f in files)
    rows = sum(f.get("rows_loaded", 0) for f in files)
    still = sum(f.get("records_still_failing", 0) for f in files)
    return (f"replay run {getattr(result, 'run_id', '?')}: {replayed:,} record(s) replayed, {rows:,} row(s) loaded, "
            f"{still:,} still failing (kept in quarantine); {selected:,} reject(s) selected")

"""A Grafana dashboard over chute: `chute ui --grafana-dashboard PATH` (docs/dashboard.md, "Grafana").

Two kinds of panels, each on a datasource picked by a dashboard variable, so the file imports
into any Grafana (11.x and later) without editing:

    ${ledger}      a PostgreSQL datasource on the ledger's database (schema `chute`): runs per
                   day, rows loaded, failed files, rejects, dead letters, queue depth. These work
                   with `chute run` alone, no watcher needed.
    ${prometheus}  a Prometheus scraping `chute watch --metrics-port` (watch/metrics.py): run
                   rates, durations p50/p95, event-to-loaded latency, retries, time since the
                   last run, the chain queue.

A third variable, ${pipeline}, lists the ledger's pipelines (projects, and `load:SCHEMA.TABLE`
for `chute load`); every panel follows it.

Built with grafana-foundation-sdk, Grafana Labs' typed builders generated from Grafana's own
schema (the 11.6 build): a panel or option the schema does not have cannot be written. The
SDK has no builder for SQL datasources' queries, so `SqlQuery` below is one, in the form the
SDK documents for "a custom query type".
"""

from __future__ import annotations

import json
from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as gc
from grafana_foundation_sdk.models.dashboard import (DataSourceRef, Threshold, ThresholdsMode, VariableRefresh,
                                                     VariableSort)

UID = "chute-overview"
POSTGRES = "grafana-postgresql-datasource"  # the PostgreSQL datasource's plugin id (Grafana >= 10.2)
PROMETHEUS = "prometheus"
LEDGER_DS = DataSourceRef(type_val=POSTGRES, uid="${ledger}")
PROM_DS = DataSourceRef(type_val=PROMETHEUS, uid="${prometheus}")

# Grafana substitutes ${pipeline} as a quoted list in SQL ('a','b') and as a regex (a|b) in PromQL.
IN_PIPELINE = "pipeline IN (${pipeline:sqlstring})"
PROM_SEL = 'pipeline=~"${pipeline:regex}"'


class SqlQuery(cogvariants.Dataquery):
    """A query of Grafana's SQL datasources (PostgreSQL here): raw SQL, as a table or a time series."""

    def __init__(self, raw_sql: str, fmt: str = "time_series", ref_id: str | None = None,
                 datasource: DataSourceRef | None = None):
        self.raw_sql = raw_sql
        self.format = fmt
        self.ref_id = ref_id
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"rawSql": self.raw_sql, "format": self.format, "rawQuery": True,
                                      "editorMode": "code"}
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(data.get("rawSql", ""), data.get("format", "time_series"), data.get("refId"),
                   DataSourceRef.from_json(ds) if isinstance(ds, dict) else None)


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, raw_sql: str, fmt: str = "time_series"):
        self._internal = SqlQuery(" ".join(raw_sql.split()), fmt, datasource=LEDGER_DS)

    def build(self) -> SqlQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self


def _targets(panel, *queries):
    """The queries, and the panel's own datasource: theirs (Grafana picks the query editor by it)."""
    panel = panel.datasource(LEDGER_DS if isinstance(queries[0], Sql) else PROM_DS)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def _prom(expr: str, legend: str, ref: str = "A") -> PromQuery:
    return PromQuery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROM_DS)


def _stat(title: str, description: str, query, *, unit: str = "short", red: bool = True) -> Stat:
    panel = (Stat().title(title).description(description).span(6).height(4).unit(unit)
             .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .graph_mode(gc.BigValueGraphMode.NONE))
    panel = _targets(panel, query)
    if red:  # green at zero, red from one up
        panel = panel.thresholds(gd.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
            Threshold(value=None, color="green"), Threshold(value=1, color="red")]))
    return panel


def _bars(title: str, description: str, *queries, unit: str = "short", stacked: bool = True) -> Timeseries:
    panel = (Timeseries().title(title).description(description).span(12).height(8).unit(unit).min(0)
             .draw_style(gc.GraphDrawStyle.BARS).fill_opacity(80).line_width(1)
             .legend(VizLegendOptions().show_legend(True).display_mode(gc.LegendDisplayMode.LIST)
                     .placement(gc.LegendPlacement.BOTTOM)))
    if stacked:
        panel = panel.stacking(StackingConfig().mode(gc.StackingMode.NORMAL))
    return _targets(panel, *queries)


def _lines(title: str, description: str, *queries, unit: str = "short") -> Timeseries:
    panel = (Timeseries().title(title).description(description).span(12).height(8).unit(unit).min(0)
             .draw_style(gc.GraphDrawStyle.LINE).fill_opacity(10).line_width(1)
             .legend(VizLegendOptions().show_legend(True).display_mode(gc.LegendDisplayMode.LIST)
                     .placement(gc.LegendPlacement.BOTTOM)))
    return _targets(panel, *queries)


# -- the ledger's panels (PostgreSQL) --------------------------------------------------------------
# A file "failing" is as on the dashboard's overview, less the landing zone (which SQL cannot see):
# its latest version failed and no one resolved it (chute forget).
FAILED_NOW = f"""
SELECT count(*) AS "failed files" FROM (
  SELECT DISTINCT ON (pipeline, name) status, resolved_at FROM chute.files
   WHERE {IN_PIPELINE} ORDER BY pipeline, name, updated_at DESC, file_id DESC) latest
 WHERE status = 'failed' AND resolved_at IS NULL"""
REJECTS_NOW = f"""SELECT count(*) AS "pending rejects" FROM chute.rejects
 WHERE {IN_PIPELINE} AND replay_state = 'pending'"""
DEAD_NOW = f"""SELECT count(*) AS "open dead letters" FROM chute.dead_letters
 WHERE {IN_PIPELINE} AND status IN ('dead', 'requeued')"""
QUEUE_NOW = """SELECT count(*) AS "waiting messages" FROM chute.queue
 WHERE status IN ('ready', 'leased') AND stage IN (${pipeline:sqlstring})"""
RUNS_PER_DAY = f"""
SELECT date_trunc('day', started_at) AS "time", status, count(*) AS runs
  FROM chute.runs WHERE $__timeFilter(started_at) AND {IN_PIPELINE}
 GROUP BY 1, 2 ORDER BY 1, 2"""
ROWS_PER_DAY = f"""
SELECT date_trunc('day', started_at) AS "time", pipeline, sum(rows_loaded) AS rows
  FROM chute.runs WHERE $__timeFilter(started_at) AND {IN_PIPELINE}
 GROUP BY 1, 2 ORDER BY 1, 2"""
FILES_PER_DAY = f"""
SELECT date_trunc('day', updated_at) AS "time",
       CASE WHEN status = 'loaded_with_rejects' THEN 'loaded' ELSE status END AS status, count(*) AS files
  FROM chute.files WHERE $__timeFilter(updated_at) AND {IN_PIPELINE} AND status <> 'skipped'
 GROUP BY 1, 2 ORDER BY 1, 2"""
REJECTS_PER_DAY = f"""
SELECT date_trunc('day', created_at) AS "time", coalesce(check_name, 'parse') AS "check", count(*) AS rejects
  FROM chute.rejects WHERE $__timeFilter(created_at) AND {IN_PIPELINE}
 GROUP BY 1, 2 ORDER BY 1, 2"""
DEAD_PER_DAY = f"""
SELECT date_trunc('day', created_at) AS "time", kind, count(*) AS "dead letters"
  FROM chute.dead_letters WHERE $__timeFilter(created_at) AND {IN_PIPELINE}
 GROUP BY 1, 2 ORDER BY 1, 2"""
QUEUE_BY_STAGE = """
SELECT stage, upstream,
       count(*) FILTER (WHERE status = 'ready') AS ready,
       count(*) FILTER (WHERE status = 'leased') AS leased,
       count(*) FILTER (WHERE status = 'dead') AS dead,
       min(available_at) FILTER (WHERE status = 'ready') AS "oldest ready"
  FROM chute.queue WHERE status <> 'done' GROUP BY stage, upstream ORDER BY stage"""
LATEST_RUNS = f"""
SELECT run_id AS run, pipeline, trigger, status, started_at AS started,
       extract(epoch FROM coalesce(ended_at, now()) - started_at) AS seconds,
       files_loaded AS "files loaded", files_failed AS "files failed",
       rows_loaded AS "rows loaded", rows_rejected AS "rows rejected", left(error, 200) AS error
  FROM chute.runs WHERE {IN_PIPELINE} ORDER BY run_id DESC LIMIT 50"""
PIPELINES = "SELECT DISTINCT pipeline FROM chute.runs ORDER BY 1"


def _ledger_panels() -> list:
    return [
        gd.Row("Ledger (PostgreSQL: schema chute)"),
        _stat("Failed files", "Files whose latest version failed and is not resolved (chute forget).",
              Sql(FAILED_NOW, "table").ref_id("A")),
        _stat("Pending rejects", "Rejected rows in quarantine waiting for a replay (chute rejects).",
              Sql(REJECTS_NOW, "table").ref_id("A")),
        _stat("Open dead letters", "Files, events and messages given up on (chute dlq list).",
              Sql(DEAD_NOW, "table").ref_id("A")),
        _stat("Queue depth", "Chained stages: messages ready or leased for the selected pipelines.",
              Sql(QUEUE_NOW, "table").ref_id("A"), red=False),
        _bars("Runs per day", "Runs started each day (UTC days of the database), by outcome.",
              Sql(RUNS_PER_DAY).ref_id("A")),
        _bars("Rows loaded per day", "Rows loaded into the target tables, by pipeline.",
              Sql(ROWS_PER_DAY).ref_id("A")),
        _bars("Files per day", "File versions settled each day: loaded (with or without rejects) and failed.",
              Sql(FILES_PER_DAY).ref_id("A")),
        _bars("Rejected rows per day", "Rejects recorded each day, by the check that failed.",
              Sql(REJECTS_PER_DAY).ref_id("A")),
        _bars("Dead letters per day", "Dead letters created each day, by kind (file, event, message).",
              Sql(DEAD_PER_DAY).ref_id("A")),
        Table().title("Chain queue by stage").span(12).height(8)
        .description("chute.queue now: messages waiting per stage (docs/chains.md).")
        .datasource(LEDGER_DS).with_target(Sql(QUEUE_BY_STAGE, "table").ref_id("A")),
        Table().title("Latest runs").span(24).height(10)
        .description("The 50 latest runs of the selected pipelines (chute.runs).")
        .datasource(LEDGER_DS).with_target(Sql(LATEST_RUNS, "table").ref_id("A")),
    ]


# -- chute watch's metrics (Prometheus) -------------------------------------------------------------
def _quantile(q: float, metric: str) -> str:
    return (f"histogram_quantile({q}, sum by (le, pipeline) "
            f"(rate({metric}_bucket{{{PROM_SEL}}}[$__rate_interval])))")


PROMQL = {
    "since": f"time() - max by (pipeline) (chute_last_run_timestamp_seconds{{{PROM_SEL}}})",
    "runs": f"sum by (status) (increase(chute_runs_total{{{PROM_SEL}}}[$__rate_interval]))",
    "files": f"sum by (status) (increase(chute_files_total{{{PROM_SEL}}}[$__rate_interval]))",
    "rows": f"sum by (pipeline) (rate(chute_rows_loaded_total{{{PROM_SEL}}}[$__rate_interval]))",
    "p50": _quantile(0.5, "chute_run_duration_seconds"),
    "p95": _quantile(0.95, "chute_run_duration_seconds"),
    "latency_p50": _quantile(0.5, "chute_event_to_loaded_seconds"),
    "latency_p95": _quantile(0.95, "chute_event_to_loaded_seconds"),
    "failures": f"sum by (pipeline) (increase(chute_run_failures_total{{{PROM_SEL}}}[$__rate_interval]))",
    "dead": f"sum by (pipeline) (increase(chute_dead_letters_total{{{PROM_SEL}}}[$__rate_interval]))",
    "retries": f"sum by (pipeline) (increase(chute_retries_total{{{PROM_SEL}}}[$__rate_interval]))",
    # Every watcher of a chain reports the stages that follow it: the same gauge, so max, not sum.
    "queue": "max by (stage, status) (chute_queue_messages)",
}


def _prometheus_panels() -> list:
    return [
        gd.Row("chute watch (Prometheus: --metrics-port)"),
        _stat("Since the last run", "Seconds since each watcher's last run ended; alert when it gets old.",
              _prom(PROMQL["since"], "{{pipeline}}"), unit="s", red=False),
        Timeseries().title("Runs").description("Runs per interval by outcome: succeeded, failed, error.")
        .span(9).height(8).unit("short").min(0).draw_style(gc.GraphDrawStyle.BARS).fill_opacity(80)
        .stacking(StackingConfig().mode(gc.StackingMode.NORMAL))
        .datasource(PROM_DS).with_target(_prom(PROMQL["runs"], "{{status}}")),
        Timeseries().title("Files").description("Files settled per interval: loaded, failed, skipped.")
        .span(9).height(8).unit("short").min(0).draw_style(gc.GraphDrawStyle.BARS).fill_opacity(80)
        .stacking(StackingConfig().mode(gc.StackingMode.NORMAL))
        .datasource(PROM_DS).with_target(_prom(PROMQL["files"], "{{status}}")),
        _lines("Rows loaded per second", "Rows committed into the target tables.",
               _prom(PROMQL["rows"], "{{pipeline}}"), unit="rowsps"),
        _lines("Run duration", "Run wall time: median and 95th percentile (from the histogram).",
               _prom(PROMQL["p50"], "p50 {{pipeline}}"), _prom(PROMQL["p95"], "p95 {{pipeline}}", "B"), unit="s"),
        _lines("Event to loaded", "From a run's first file event to its rows committed: p50 and p95.",
               _prom(PROMQL["latency_p50"], "p50 {{pipeline}}"),
               _prom(PROMQL["latency_p95"], "p95 {{pipeline}}", "B"), unit="s"),
        _bars("Failures, dead letters, retries", "Runs that failed or could not run, new dead letters, "
              "and retries after transient errors, per interval.",
              _prom(PROMQL["failures"], "failed runs {{pipeline}}"),
              _prom(PROMQL["dead"], "dead letters {{pipeline}}", "B"),
              _prom(PROMQL["retries"], "retries {{pipeline}}", "C"), stacked=False),
        _lines("Chain queue", "Messages ready, leased and dead per stage, read from the ledger at each scrape.",
               _prom(PROMQL["queue"], "{{stage}} {{status}}")),
    ]


def build() -> dict:
    """The dashboard as Grafana's JSON model (a dict ready for json.dump)."""
    pipelines = (gd.QueryVariable("pipeline").label("Pipeline").datasource(LEDGER_DS).query(PIPELINES)
                 .multi(True).include_all(True).refresh(VariableRefresh.ON_DASHBOARD_LOAD)
                 .sort(VariableSort.ALPHABETICAL_ASC))
    board = (gd.Dashboard("chute").uid(UID).tags(["chute", "etl"]).editable()
             .description("chute's ledger (PostgreSQL) and chute watch's metrics (Prometheus). "
                          "Made by `chute ui --grafana-dashboard`.")
             .time("now-30d", "now").refresh("1m").timezone("browser")
             .with_variable(gd.DatasourceVariable("ledger").label("Ledger (PostgreSQL)").type(POSTGRES))
             .with_variable(gd.DatasourceVariable("prometheus").label("Prometheus").type(PROMETHEUS))
             .with_variable(pipelines))
    for n, panel in enumerate(_ledger_panels() + _prometheus_panels(), start=1):
        panel = panel.id(n)
        board = board.with_row(panel) if isinstance(panel, gd.Row) else board.with_panel(panel)
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


def dumps() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"

"""`chute ui --grafana-dashboard`: a Grafana dashboard whose SQL runs on a real ledger and whose
PromQL parses and names only metrics `chute watch` exposes.

No PyPI package ships Grafana's dashboard JSON schema, so the file is checked three ways:
the Foundation SDK (types generated from that schema) reads it back unchanged; its structure is
what Grafana needs to import it (unique panel ids, a grid of 24 columns, every datasource a
variable of the right plugin type); and every query is run (SQL, on the ledger of real `chute
run`s, with Grafana's macros expanded as Grafana expands them) or parsed (PromQL).
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from chute.ui import grafana


@pytest.fixture(scope="module")
def board() -> dict:
    return grafana.build()


def targets(board: dict):
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def sql_of(board: dict) -> dict[str, str]:
    found = {panel["title"]: t["rawSql"] for panel, t in targets(board) if "rawSql" in t}
    assert found
    return found


def expand(raw: str, pipelines: list[str]) -> str:
    """Grafana's PostgreSQL datasource's expansion of what the dashboard uses: $__timeFilter(col) is
    `col BETWEEN 'from' AND 'to'` (RFC 3339), ${var:sqlstring} the values quoted and comma-separated."""
    out = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 r"\1 BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'", raw)
    out = out.replace("${pipeline:sqlstring}", ",".join("'" + p.replace("'", "''") + "'" for p in pipelines))
    assert "$" not in out, f"an unexpanded Grafana variable or macro: {out}"
    return out


# -- the file ----------------------------------------------------------------------------------
def test_chute_ui_writes_the_dashboard_to_a_file_or_standard_output(cli, tmp_path):
    path = tmp_path / "chute-grafana.json"
    result = cli("ui", "--grafana-dashboard", path)
    assert "Import" in result.output
    assert json.loads(path.read_text()) == grafana.build()
    assert json.loads(cli("ui", "--grafana-dashboard", "-").output)["uid"] == grafana.UID


def test_the_foundation_sdk_reads_the_dashboard_back_unchanged(board):
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.cog.runtime import DataqueryConfig, register_dataquery_variant
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    register_dataquery_variant(DataqueryConfig(identifier=grafana.POSTGRES, from_json_hook=grafana.SqlQuery.from_json))
    model = Dashboard.from_json(board)
    assert json.loads(JSONEncoder(sort_keys=True).encode(model)) == board


def test_the_dashboard_has_what_grafana_needs_to_import_it(board):
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time"):
        assert key in board
    assert "id" not in board  # a new dashboard on import, not one with this database id
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    for p in board["panels"]:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        assert p["type"] in {"row", "stat", "timeseries", "table"}
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["ledger"]["type"] == "datasource" and variables["ledger"]["query"] == grafana.POSTGRES
    assert variables["prometheus"]["type"] == "datasource" and variables["prometheus"]["query"] == "prometheus"
    assert variables["pipeline"]["datasource"] == {"type": grafana.POSTGRES, "uid": "${ledger}"}
    kinds = {"${ledger}": grafana.POSTGRES, "${prometheus}": "prometheus"}
    for panel, target in targets(board):
        ds = target["datasource"]
        assert kinds[ds["uid"]] == ds["type"], panel["title"]
        assert panel["datasource"] == ds, f"{panel['title']}: the panel's datasource is not its queries'"
        assert ("rawSql" in target) == (ds["type"] == grafana.POSTGRES)
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
    titles = {p["title"] for p in board["panels"]}
    for wanted in ("Runs per day", "Rows loaded per day", "Failed files", "Rejected rows per day",
                   "Open dead letters", "Queue depth", "Run duration", "Since the last run"):
        assert wanted in titles


# -- the SQL panels on a real ledger -------------------------------------------------------------
def test_every_sql_panel_runs_on_the_ledger_of_real_runs(ui_project, db_url, board):
    """The ui fixture ran the stocks project twice: the second run met a broken file, which became a
    dead letter. Add a reject and chain messages as chute writes them, then run every panel's query."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        failed = conn.execute("SELECT file_id, run_id, name, sha256 FROM chute.files WHERE status = 'failed'").fetchone()
        conn.execute("INSERT INTO chute.rejects (pipeline, run_id, file_id, file_name, file_sha256, target_table,"
                     " column_name, check_name, reason) VALUES ('stocks', %s, %s, %s, %s, 'historical_stocks_data',"
                     " 'volume_traded', 'max', 'above 1000000')", (failed[1], failed[0], failed[2], failed[3]))
        conn.execute("INSERT INTO chute.queue (stage, upstream, payload, status) VALUES"
                     " ('stocks', 'raw', '{}', 'ready'), ('stocks', 'raw', '{}', 'ready'), ('stocks', 'raw', '{}', 'dead')")
        runs = conn.execute("SELECT count(*), sum(rows_loaded) FROM chute.runs").fetchone()

        results = {}
        for title, raw in sql_of(board).items():
            results[title] = conn.execute(expand(raw, ["stocks"])).fetchall()
        assert results["Failed files"] == [(1,)]
        assert results["Pending rejects"] == [(1,)]
        assert results["Open dead letters"] == [(1,)]
        assert results["Queue depth"] == [(2,)]
        assert sum(n for _day, _status, n in results["Runs per day"]) == runs[0] == 2
        assert {status for _day, status, _n in results["Runs per day"]} == {"succeeded", "failed"}
        assert sum(n for _day, _p, n in results["Rows loaded per day"]) == runs[1] > 0
        assert {s for _d, s, _n in results["Files per day"]} == {"loaded", "failed"}
        assert [(c, n) for _d, c, n in results["Rejected rows per day"]] == [("max", 1)]
        assert [(k, n) for _d, k, n in results["Dead letters per day"]] == [("file", 1)]
        assert [row[:5] for row in results["Chain queue by stage"]] == [("stocks", "raw", 2, 0, 1)]
        assert len(results["Latest runs"]) == 2
        # A pipeline that is not selected shows nothing; the variable lists the ledger's pipelines.
        assert conn.execute(expand(sql_of(board)["Runs per day"], ["other"])).fetchall() == []
        pipelines = next(v for v in board["templating"]["list"] if v["name"] == "pipeline")
        assert conn.execute(pipelines["query"]).fetchall() == [("stocks",)]


# -- the Prometheus panels -----------------------------------------------------------------------
def exposed_metrics() -> set[str]:
    """The sample names a `chute watch` with a chain queue serves."""
    from chute.watch.metrics import Metrics, QueueCollector

    metrics = Metrics("stocks")
    metrics.duration.labels("stocks").observe(1.0)
    metrics.latency.labels("stocks").observe(0.1)
    metrics.record_error("folder")  # a run that could not run: chute_runs_total and the last run
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    names |= {family.name for family in QueueCollector("postgresql://unused", "stocks").describe()}
    return names


def test_every_promql_parses_and_names_metrics_chute_watch_serves(board):
    import promql_parser

    exposed = exposed_metrics()
    exprs = [t["expr"] for _p, t in targets(board) if "expr" in t]
    assert len(exprs) >= 10
    used = set()
    for expr in exprs:
        # Grafana's substitutions: ${pipeline:regex} is (a|b), $__rate_interval a duration.
        concrete = expr.replace("${pipeline:regex}", "(stocks|load:public\\\\.t)").replace("$__rate_interval", "1m")
        assert "$" not in concrete
        promql_parser.parse(concrete)  # raises on a syntax error
        for name in re.findall(r"\b(chute_[a-z_]+)", concrete):
            assert name in exposed, f"{name} is not a metric chute watch serves"
            used.add(name)
    assert {"chute_runs_total", "chute_files_total", "chute_rows_loaded_total", "chute_run_duration_seconds_bucket",
            "chute_last_run_timestamp_seconds", "chute_queue_messages", "chute_dead_letters_total"} <= used

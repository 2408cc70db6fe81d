"""A Kedro project's pipeline as a chute pipeline ([pipeline] kedro): a real Kedro project
(pyproject.toml, conf/, src/ with a registry that finds its pipelines) runs through `chute run`
into a real PostgreSQL, exactly once."""

from __future__ import annotations

import json
import sys

import pytest

from chute.config.project import load_project
from chute.errors import ConfigError, PipelineError
from chute.run.plan import build_plan
from fixtures_kedro import expected

DAILY = "SELECT ticker, price_date, open_value, close_value, volume, change, sector FROM daily_prices"
SUMMARY = "SELECT ticker, days, total_volume, best_change FROM ticker_summary"


def test_the_kedro_graph_becomes_the_plan(kedro_project):
    plan = build_plan(load_project(kedro_project))
    assert [n.name for n in plan.batch] == ["clean_prices", "with_sectors", "ticker_summary"]
    assert sorted(n.name for n in plan.static) == ["catalog.load(params:min_volume)", "catalog.load(sectors)"]
    by_name = {n.name: n for n in plan.batch}
    assert by_name["clean_prices"].inputs == ("raw_prices", "params:min_volume")
    assert by_name["with_sectors"].outputs == ("daily_prices",)  # daily_prices@pandas: Kedro wires by the name
    assert by_name["ticker_summary"].inputs == ("daily_prices",)


def test_chute_run_loads_a_kedro_pipeline_exactly_once(kedro_project, cli, query):
    summary = json.loads(cli("run", "-p", kedro_project, "--json").output)  # stdout stays pure JSON
    assert summary["status"] == "succeeded" and summary["files_loaded"] == 3
    daily, tickers = expected(kedro_project)
    assert len(daily) > 20 and len(tickers) == 3
    assert sorted(query(DAILY)) == daily
    assert sorted(query(SUMMARY)) == tickers
    assert summary["rows_loaded"] == len(daily) + len(tickers)

    again = json.loads(cli("run", "-p", kedro_project, "--json").output)
    assert again["files_loaded"] == 0
    assert sorted(query(DAILY)) == daily and sorted(query(SUMMARY)) == tickers
    assert query("SELECT count(*), min(status) FROM chute.files") == [(3, "loaded")]


def test_chute_params_override_the_kedro_parameters(kedro_project, cli, query):
    config = kedro_project / "chute.toml"
    config.write_text(config.read_text() + "\n[params]\nmin_volume = 0\n")
    cli("run", "-p", kedro_project)
    daily, tickers = expected(kedro_project, min_volume=0)
    assert sorted(query(DAILY)) == daily and sorted(query(SUMMARY)) == tickers
    assert len(daily) == 3 * 20


def test_a_failing_kedro_node_fails_its_file_only(kedro_project, cli, query):
    bad = kedro_project / "landing" / "bbk.csv"
    bad.write_text(bad.read_text() + "2024-04-01,BBK,1,2,-5\n")
    summary = json.loads(cli("run", "-p", kedro_project, "--json", expect=1).output)
    errors = {f["name"]: f.get("error") for f in summary["files"] if f["status"] == "failed"}
    assert list(errors) == ["bbk.csv"] and "node clean_prices failed" in errors["bbk.csv"]
    assert "a negative volume" in errors["bbk.csv"]
    daily, _ = expected(kedro_project)
    assert sorted(query(DAILY)) == [r for r in daily if r[0] != "bbk"]


def test_a_polars_project_gets_polars_frames(kedro_project, cli, query):
    """frames = "polars": every frame a node takes is polars unless its name says @pandas."""
    nodes = kedro_project / "src" / "kedro_demo" / "pipelines" / "prices" / "nodes.py"
    nodes.write_text(nodes.read_text().replace(
        'def clean_prices(raw: pd.DataFrame, min_volume: int) -> pd.DataFrame:\n',
        'def clean_prices(raw: pd.DataFrame, min_volume: int) -> pd.DataFrame:\n'
        '    assert isinstance(raw, pl.DataFrame), type(raw)\n    raw = raw.to_pandas()\n'))
    pipeline = nodes.with_name("pipeline.py")  # with_sectors still takes pandas: the name says so
    pipeline.write_text(pipeline.read_text().replace('"clean_prices", name=', '"clean_prices@pandas", name=')
                        .replace('["clean_prices", "sectors"]', '["clean_prices@pandas", "sectors"]'))
    config = kedro_project / "chute.toml"
    config.write_text(config.read_text().replace(
        'kedro = "kedro_demo.pipeline_registry:__default__"',
        '[pipeline.kedro]\npipeline = "kedro_demo.pipeline_registry:__default__"\nframes = "polars"'))
    assert load_project(kedro_project).pipeline.kedro.frames == "polars"
    cli("run", "-p", kedro_project)
    daily, tickers = expected(kedro_project)
    assert sorted(query(DAILY)) == daily and sorted(query(SUMMARY)) == tickers


def test_a_pipeline_by_name_and_a_modular_pipeline_function(kedro_project):
    config = kedro_project / "chute.toml"
    text = config.read_text()
    for spec in ("prices", "kedro_demo.pipelines.prices:create_pipeline", "__default__"):
        config.write_text(text.replace('"kedro_demo.pipeline_registry:__default__"', json.dumps(spec)))
        assert [n.name for n in build_plan(load_project(kedro_project)).batch][0] == "clean_prices"
    config.write_text(text.replace("pipeline_registry:__default__", "pipeline_registry:nightly"))
    with pytest.raises(PipelineError, match=r"no pipeline 'nightly' \(it has: __default__, prices\)"):
        build_plan(load_project(kedro_project))


def test_wiring_mistakes_are_named(kedro_project):
    config = kedro_project / "chute.toml"
    text = config.read_text()
    config.write_text(text.replace('input = "raw_prices"', 'input = "prices"'))
    with pytest.raises(PipelineError, match=r"input = 'prices': no node of the Kedro pipeline takes that dataset.*"
                                            r"params:min_volume, raw_prices, sectors"):
        build_plan(load_project(kedro_project))
    config.write_text(text)
    catalog = kedro_project / "conf" / "base" / "catalog.yml"
    catalog.write_text(catalog.read_text().split("sectors:")[0])
    with pytest.raises(PipelineError, match="node with_sectors needs input 'sectors'"):
        build_plan(load_project(kedro_project))
    (kedro_project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"tool\.kedro"):
        build_plan(load_project(kedro_project))


def test_chute_starts_without_kedro(kedro_project, stocks, monkeypatch):
    """kedro is an optional extra: a project without [pipeline] kedro never imports it, and one
    with it says what to install."""
    for name in [m for m in sys.modules if m == "kedro" or m.startswith("kedro.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kedro", None)  # `import kedro` raises ImportError
    assert [n.name for n in build_plan(load_project(stocks)).batch]
    with pytest.raises(ConfigError, match=r"pip install 'chute\[kedro\]'"):
        build_plan(load_project(kedro_project))


def test_chute_watch_runs_the_kedro_pipeline_as_files_land(kedro_project, watch_process, db_url, query):
    from fixtures_watch import drop, wait_until

    config = kedro_project / "chute.toml"
    config.write_text(config.read_text() + "\n[watch]\ndebounce = 0.05\nsettle = 0.5\nrescan = 2\n")
    waiting = {p.name: p.read_text() for p in (kedro_project / "landing").glob("*.csv")}
    for name in waiting:
        (kedro_project / "landing" / name).unlink()
    w = watch_process(kedro_project)
    for name, text in waiting.items():
        drop(kedro_project, name, text)
    daily, tickers = expected(kedro_project)
    wait_until(lambda: sorted(query(SUMMARY)) == tickers, what=f"the three files loaded: {w.log()}")
    assert sorted(query(DAILY)) == daily
    assert w.terminate() == 0
    assert "Running node" not in w.log() and "rich_logging" not in w.log()  # Kedro's logging stays out

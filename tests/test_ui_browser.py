"""The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), served by
uvicorn on a free loopback port over a real database with real runs. Screenshots of each main
page go to tests/output/screens/ (git-ignored)."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest

from fixtures_ui import chromium_path

SCREENS = Path(__file__).parent / "output" / "screens"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"overview": "/", "trends": "/trends", "runs": "/runs", "run": "/runs/1", "files": "/files", "file": "/files/1",
         "quarantine": "/quarantine", "pipeline": "/pipeline", "tables": "/tables",
         "table": "/tables/historical_stocks_data", "schedules": "/schedules", "lineage": "/lineage",
         "actions": "/actions", "confirm": "/actions/confirm?do=run"}

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no chromium (make test installs Debian's)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(project, db_url):
    """The dashboard on http://127.0.0.1:<free port>, in a thread of this process."""
    import uvicorn

    from chute.ui.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(project, db_url), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # bounded: the server says when it listens
        if server.started or not thread.is_alive():
            break
        thread.join(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def served(ui_project, db_url):
    yield from _serve(ui_project, db_url)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []  # console errors and CSP violations would show here
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


def test_every_page_renders_its_data(page, served, query):
    from playwright.sync_api import expect

    SCREENS.mkdir(parents=True, exist_ok=True)
    for name, path in PAGES.items():
        response = page.goto(served + path)
        assert response.status == 200, path
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
    runs = query("SELECT count(*) FROM chute.runs")[0][0]
    page.goto(served + "/runs")
    expect(page.locator("#runs tbody tr")).to_have_count(runs)
    page.goto(served + "/")
    expect(page.locator("#card-failed .n")).to_have_text("1")
    expect(page.locator("#chart-rows g.bucket").first).to_be_attached()
    page.goto(served + "/tables")
    count = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    expect(page.locator("#table-historical_stocks_data .rowcount")).to_have_text(f"{count:,}")
    page.goto(served + "/runs/1")
    expect(page.locator("#node-historical_stocks_data")).to_be_visible()
    assert page.problems == []


def test_the_pipeline_graph_shows_the_nodes_and_links_to_their_timings(page, served):
    from playwright.sync_api import expect

    page.goto(served + "/pipeline")
    nodes = page.locator("svg.dag g[data-kind=node]")
    expect(nodes).to_have_count(2)
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.name)")) == ["historical_stocks_data",
                                                                                 "top_tickers"]
    expect(page.locator("svg.dag g[data-kind=table] text")).to_have_text(["table · public", "historical_stocks_data"])
    box = page.locator("svg.dag").bounding_box()
    assert box and box["width"] > 150 and box["height"] > 300  # drawn top to bottom, not collapsed
    page.locator("svg.dag g[data-name=historical_stocks_data][data-kind=node]").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+#node-historical_stocks_data$"))
    expect(page.locator("#node-historical_stocks_data")).to_be_visible()


def test_a_stale_table_shows_a_freshness_warning(page, served, ui_project, db_url):
    import psycopg
    from playwright.sync_api import expect

    config = ui_project.root / "chute.toml"  # the dashboard reads chute.toml again on each page
    config.write_text(config.read_text().replace("[tables.historical_stocks_data]\n",
                                                 '[tables.historical_stocks_data]\nfresh_within = "1h"\n'))
    page.goto(served + "/tables/historical_stocks_data")
    expect(page.locator("h1 .badge-fresh")).to_have_text("fresh")
    expect(page.locator("#freshness-warning")).to_have_count(0)
    with psycopg.connect(db_url, autocommit=True) as conn:  # the last load was three hours ago
        conn.execute("UPDATE chute.runs SET started_at = started_at - interval '3 hours',"
                     " ended_at = ended_at - interval '3 hours'")
    page.reload()
    expect(page.locator("#freshness-warning")).to_contain_text("no run has written to this table for 3 h")
    expect(page.locator("#freshness-warning")).to_contain_text("expects a change every 1 h")
    expect(page.locator("h1 .badge-stale")).to_contain_text("stale")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "table-stale.png"), full_page=True)
    page.goto(served + "/tables")
    expect(page.locator("#table-historical_stocks_data")).to_have_attribute("data-fresh", "stale")
    assert page.problems == []


def test_trends_switch_range_and_explain_each_column(page, served, db_url):
    import psycopg
    from playwright.sync_api import expect

    with psycopg.connect(db_url, autocommit=True) as conn:  # a run five days ago, 42 s long
        conn.execute("""INSERT INTO chute.runs (pipeline, status, started_at, ended_at, files_seen, files_loaded,
                        rows_loaded, details) VALUES ('stocks', 'succeeded', now() - interval '5 days',
                        now() - interval '5 days' + interval '42 seconds', 3, 3, 1234,
                        '{"tables": {"historical_stocks_data": 1234}}')""")
    page.goto(served + "/trends?range=day")
    expect(page.locator("#ranges a.active")).to_have_text("24 hours")
    day = page.locator("#chart-files g.bucket").count()
    page.get_by_role("link", name="7 days").click()
    expect(page).to_have_url(re.compile(r"range=week$"))
    buckets = page.locator("#chart-files g.bucket")
    assert 5 <= buckets.count() <= 36 and buckets.count() != day  # from five days ago to now
    old = page.locator("#chart-table-rows g.bucket").first
    expect(old.locator("title")).to_contain_text("1,234 historical_stocks_data (1 run)")
    box = page.locator("#chart-duration").bounding_box()
    assert box and box["width"] > 400
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#chart-duration text')).fontSize)")
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size <= body  # the chart's text is not larger than the page's
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "trends-week.png"), full_page=True)
    assert page.problems == []


def _running_run(query, runner: threading.Thread) -> int:
    """The id of the run `runner` started, once its row is there (bounded wait)."""
    for _ in range(400):
        if query("SELECT to_regclass('chute.runs') IS NOT NULL")[0][0]:
            rows = query("SELECT run_id FROM chute.runs WHERE status = 'running'")
            if rows:
                return rows[0][0]
        runner.join(0.05)
    raise AssertionError("the run did not start")


def test_a_live_run_updates_without_a_reload(page, items_project, db_url, query):
    """A node that sleeps keeps the run open; its page shows each file as it settles, then the
    outcome and the log, all without a reload."""
    from playwright.sync_api import expect

    from chute.config.project import load_project
    from chute.run.runner import Runner
    from conftest import write

    folder = items_project(watch="claim_files = 1")  # one file per load transaction: progress shows
    (folder / "DELAY").write_text("1.2")
    for i in range(6):  # about 7 s of run: long enough to watch on two pages
        write(folder / "landing" / f"part{i}.csv", f"id,value\n{i},v{i}\n{i + 10},w{i}\n")
    project = load_project(folder)
    served = _serve(project, db_url)
    base = next(served)
    runner = threading.Thread(target=lambda: Runner(project, db_url).run(), name="slow-run")
    try:
        runner.start()
        run_id = _running_run(query, runner)
        page.goto(f"{base}/runs/{run_id}")
        expect(page.locator("#run-body")).to_have_attribute("data-status", "running")
        expect(page.locator("#live")).to_be_visible()
        page.evaluate("window.notReloaded = true")  # a reload would lose it
        expect(page.locator("#files-so-far")).to_contain_text("1 loaded", timeout=20_000)
        expect(page.locator("#live-log")).to_contain_text("part0.csv: loaded, 2 rows")
        expect(page.locator("#rows-out")).to_have_text("2")
        expect(page.locator("#files-so-far")).to_contain_text("2 loaded", timeout=20_000)
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "run-live.png"), full_page=True)
        page.goto(f"{base}/runs")  # the runs list follows it too
        expect(page.locator(f'#runs tr[data-run="{run_id}"]')).to_contain_text("running")
        page.evaluate("window.notReloaded = true")
        expect(page.locator(f'#runs tr[data-run="{run_id}"]')).to_contain_text("succeeded", timeout=20_000)
        assert page.evaluate("window.notReloaded") is True
        page.goto(f"{base}/runs/{run_id}")
        expect(page.locator("#run-body")).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#run-log-lines")).to_contain_text("part5.csv: loaded, 2 rows loaded", timeout=20_000)
        expect(page.locator("#run-log-lines")).to_contain_text("succeeded")
        assert page.problems == []
    finally:
        runner.join(60)
        next(served, None)


def test_a_finished_run_page_updates_itself_to_its_log(page, items_project, db_url, query):
    """Watched from start to end on its own page: running, then succeeded with the log inline."""
    from playwright.sync_api import expect

    from chute.config.project import load_project
    from chute.run.runner import Runner
    from conftest import write

    folder = items_project(watch="claim_files = 1")
    (folder / "DELAY").write_text("1.0")
    for i in range(2):
        write(folder / "landing" / f"part{i}.csv", f"id,value\n{i},v{i}\n")
    project = load_project(folder)
    served = _serve(project, db_url)
    base = next(served)
    runner = threading.Thread(target=lambda: Runner(project, db_url).run(), name="slow-run")
    try:
        runner.start()
        run_id = _running_run(query, runner)
        page.goto(f"{base}/runs/{run_id}")
        page.evaluate("window.notReloaded = true")
        expect(page.locator("#run-body")).to_have_attribute("data-status", "succeeded", timeout=30_000)
        expect(page.locator("#run-log-lines")).to_contain_text("part1.csv: loaded", timeout=30_000)
        assert page.evaluate("window.notReloaded") is True
        assert page.problems == []
    finally:
        runner.join(60)
        next(served, None)


@pytest.fixture
def retail_chain(tmp_path, cli, db_url):
    """The retail example's three stages after a run each (its API on a free port)."""
    from chute.examples.retail.api import RetailServer

    server = RetailServer(port=0, seed=7, branches=3).start()
    folder = tmp_path / "retail"
    cli("init", folder, "--example", "retail")
    for stage in ("branches", "salespersons", "sales"):
        toml = folder / stage / "chute.toml"
        toml.write_text(re.sub(r"http://127\.0\.0\.1:\d+", server.url, toml.read_text()), encoding="utf-8")
    cli("extract", "-p", folder / "branches")
    for stage in ("branches", "salespersons", "sales"):
        cli("run", "-p", folder / stage)
    yield folder
    server.close()


def test_lineage_draws_the_chained_stages_as_one_graph(page, retail_chain, db_url, query):
    import psycopg
    from playwright.sync_api import expect

    from chute.config.project import load_project

    with psycopg.connect(db_url, autocommit=True) as conn:  # one message waiting for sales, one dead letter
        conn.execute("INSERT INTO chute.queue (stage, upstream, payload) VALUES ('sales', 'salespersons',"
                     " '{\"keys\": [{\"employee_id\": \"E0999\"}]}')")
        conn.execute("INSERT INTO chute.dead_letters (pipeline, kind, name, version, error) VALUES"
                     " ('sales', 'message', 'E0998', '1', 'HTTP 500')")
    served = _serve(load_project(retail_chain / "salespersons"), db_url)
    base = next(served)
    try:
        page.goto(base + "/lineage")
        stages = page.locator("#lineage g[data-kind=stage]")
        expect(stages).to_have_count(3)
        assert sorted(stages.evaluate_all("els => els.map(e => e.dataset.name)")) == ["branches", "sales",
                                                                                      "salespersons"]
        tables = page.locator("#lineage g[data-kind=table]")
        assert sorted(tables.evaluate_all("els => els.map(e => e.dataset.name)")) == ["branches", "sales",
                                                                                      "salespersons"]
        expect(page.locator("#lineage g[data-name=sales][data-kind=stage] text.kind")).to_have_text(
            "stage · 1 queued · 1 dead")
        # Drawn top to bottom in chain order: branches above salespersons above sales.
        ys = {n: page.locator(f"#lineage g[data-name={n}][data-kind=stage]").bounding_box()["y"]
              for n in ("branches", "salespersons", "sales")}
        assert ys["branches"] < ys["salespersons"] < ys["sales"]
        assert page.locator("#lineage path.edge").count() >= 5  # stage -> table -> next stage, twice, + sales
        done = query("SELECT count(*) FROM chute.queue WHERE stage = 'sales' AND status = 'done'")[0][0]
        expect(page.locator("#stage-sales")).to_contain_text("salespersons, on rows of salespersons")
        expect(page.locator("#stage-sales td.num").nth(2)).to_have_text(f"{done:,}")
        expect(page.locator("#stage-sales .dead-letters")).to_have_text("1")
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "lineage.png"), full_page=True)
        page.locator("#lineage g[data-name=salespersons][data-kind=table]").click()  # this project's table
        expect(page).to_have_url(base + "/tables/salespersons")
        assert page.problems == []
    finally:
        next(served, None)


def test_start_a_run_asks_first_and_shows_what_it_did(page, served, stocks, query):
    from playwright.sync_api import expect

    from conftest import write

    top = (stocks / "reference" / "top_companies.txt").read_text().split(",")[1].strip().strip("'\"")
    write(stocks / "landing" / "late" / top, "Date,Open,High,Low,Close,Volume,OpenInt\n2017-01-02,1,2,1,2,5,0\n")
    page.goto(served + "/")
    page.locator("#start-run").click()
    expect(page.locator("h1")).to_have_text("Start a run?")
    expect(page.locator("#confirm-facts")).to_contain_text(f"1 file(s) are pending now: late/{top}")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "confirm-run.png"), full_page=True)
    page.locator("#confirm").click()
    expect(page).to_have_url(served + "/actions")
    expect(page.locator("#actions-done li").first).to_contain_text("start a run succeeded", timeout=30_000)
    (run_id,) = query("SELECT run_id FROM chute.runs WHERE trigger = 'ui'")[0]
    expect(page.locator("#actions-done li").first).to_contain_text(
        f"run {run_id}: 1 file(s) loaded, 0 failed, 1 rows written")
    page.screenshot(path=str(SCREENS / "actions.png"), full_page=True)
    assert page.problems == []


def test_file_search_updates_as_you_type(page, served, query):
    from playwright.sync_api import expect

    names = [n for (n,) in query("SELECT name FROM chute.files ORDER BY name")]
    page.goto(served + "/files")
    expect(page.locator("#files tbody tr")).to_have_count(len(names))
    page.locator("#search").press_sequentially(names[0][:3])
    matching = [n for n in names if names[0][:3] in n]
    expect(page.locator("#files tbody tr")).to_have_count(len(matching))  # htmx swapped the rows in place
    expect(page).to_have_url(re.compile(r"search=" + re.escape(names[0][:3])))
    page.locator("#search").fill("no-such-file")
    expect(page.locator("#file-rows .empty")).to_contain_text("No file matches")
    page.locator("#search").fill("")
    page.locator("#status").select_option("failed")
    expect(page.locator("#files tbody tr")).to_have_count(1)
    assert page.problems == []


@pytest.mark.parametrize("width", [390, 400])
def test_pages_fit_a_phone_screen(browser, served, width):
    context = browser.new_context(viewport={"width": width, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in PAGES.items():
            page.goto(served + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than {width} px"
            texts = page.evaluate("Array.from(document.querySelectorAll('svg.chart text'))"
                                  ".map(t => parseFloat(getComputedStyle(t).fontSize))")
            assert all(10 <= size <= 14 for size in texts), f"{path}: chart text of {texts} px"
            if width == 400:
                page.screenshot(path=str(SCREENS / f"400-{name}.png"), full_page=True)
    finally:
        context.close()


def test_retry_from_the_browser_posts_with_the_csrf_token(page, served, query):
    from playwright.sync_api import expect

    page.goto(served + "/")
    page.get_by_role("link", name="Retry failed files").click()
    expect(page.locator("#confirm-facts")).to_contain_text("1 file(s) failed.")  # it asks first
    assert query("SELECT count(*) FROM chute.runs WHERE trigger = 'ui'")[0][0] == 0
    page.locator("#confirm").click()
    expect(page).to_have_url(served + "/runs")
    for thread in threading.enumerate():
        if thread.name == "chute-ui-retry":
            thread.join()
    assert query("SELECT count(*) FROM chute.runs WHERE trigger = 'ui'")[0][0] == 1
    page.reload()
    expect(page.locator("#action")).to_contain_text("retry failed files: failed")


@pytest.fixture
def served_rejects(rejects_project, db_url):
    yield from _serve(rejects_project, db_url)


def test_replay_from_the_quarantine_page_loads_the_fixed_rows(page, served_rejects, rejects_project, query):
    from playwright.sync_api import expect

    name, count = query("SELECT file_name, count(*) FROM chute.rejects GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    before = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    page.goto(served_rejects + "/quarantine")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "quarantine-with-rejects.png"), full_page=True)
    page.locator("#reject-filters input[name=file]").fill(name)
    page.locator("#filter-column_name").select_option("volume_traded")
    page.locator("#reject-filters button").click()
    expect(page.locator("#reject-total")).to_contain_text(f"{count:,} rejected row(s) match")
    config = rejects_project.root / "chute.toml"  # the fix: the limit was too strict
    config.write_text(config.read_text().replace("max = 1000000", "max = 1000000000"))
    page.locator("#replay").click()
    expect(page.locator("h1")).to_contain_text(f"Replay {count:,} rejected row(s)?")  # it asks first
    page.locator("#confirm").click()
    expect(page.locator("#replay-result")).to_contain_text(f"{count:,} record(s) replayed, {count:,} row(s) loaded")
    assert query("SELECT count(*) FROM historical_stocks_data")[0][0] == before + count
    assert query("SELECT count(*) FROM chute.rejects WHERE replay_state = 'replayed'")[0][0] == count
    page.screenshot(path=str(SCREENS / "quarantine-after-replay.png"), full_page=True)
    assert page.problems == []


LONG = "exports/2024-q3/partner-delivery-with-a-rather-long-folder-name/daily-prices-final-v2"


@pytest.fixture
def served_two_checks(stocks, db_url):
    """A top company's file under a long path; rows that traded fail two checks (volume and close
    above ceilings of 0), the others one."""
    from chute.config.project import load_project
    from chute.run.runner import Runner

    top = (stocks / "reference" / "top_companies.txt").read_text().split(",")[0].strip().strip("'\"")
    ticker = top.split(".us.")[0]
    found = next((stocks / "landing").glob(f"{ticker}.us.*"))
    (stocks / "landing" / LONG).mkdir(parents=True)
    found.rename(stocks / "landing" / LONG / found.name)
    for other in (stocks / "landing").glob("*.us.*"):
        other.unlink()  # just the one file
    config = stocks / "chute.toml"
    config.write_text(config.read_text() + "\n[tables.historical_stocks_data.contract.columns.volume_traded]\n"
                      "max = 0\n[tables.historical_stocks_data.contract.columns.close_value]\nmax = 0\n")
    project = load_project(stocks)
    summary = Runner(project, db_url).run()
    assert summary.ok, summary.error
    yield from _serve(project, db_url)


def test_the_quarantine_page_shows_whole_names_one_line_reasons_whole_records_and_rows_apart_from_checks(
        page, served_two_checks, query):
    rows, checks = query("SELECT count(DISTINCT (file_sha256, row_number)), count(*) FROM chute.rejects")[0]
    assert checks > rows  # some rows failed both checks
    page.goto(served_two_checks + "/quarantine")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "quarantine-long-names.png"), full_page=True)
    total = page.locator("#reject-total").inner_text()
    assert f"{rows:,} rejected row(s) ({checks:,} failed checks" in total, total

    table = page.locator("#rejects").bounding_box()
    cell = page.locator("#rejects tbody tr").first.locator("td.file")
    assert LONG in cell.inner_text().replace("\n", "")  # the whole name, wrapped
    assert cell.bounding_box()["width"] < 0.35 * table["width"]  # not most of the table
    reason = page.locator("#rejects tbody td.reason").first
    # Not squeezed: the reason's text takes one line of its cell, in a column wider than a few words.
    lines = reason.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e);"
                            " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size }")
    assert lines == 1, reason.inner_text()
    assert reason.bounding_box()["width"] > 200
    raw = page.locator("#rejects tbody td.raw").first.inner_text()
    stored = query("SELECT raw_record FROM chute.rejects ORDER BY reject_id DESC LIMIT 1")[0][0]
    assert raw.strip() == stored.strip()  # the record whole
    assert page.problems == []

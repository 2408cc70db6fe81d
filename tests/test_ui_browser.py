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
PAGES = {"overview": "/", "runs": "/runs", "run": "/runs/1", "files": "/files", "file": "/files/1",
         "quarantine": "/quarantine", "pipeline": "/pipeline", "tables": "/tables"}

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
    expect(page.locator("#daily-chart g.day")).to_have_count(30)
    page.goto(served + "/tables")
    count = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    expect(page.locator(".rowcount")).to_have_text(f"{count:,} rows")
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


def test_pages_fit_a_phone_screen(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in PAGES.items():
            page.goto(served + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
            if name in ("overview", "runs", "pipeline", "quarantine"):
                page.screenshot(path=str(SCREENS / f"phone-{name}.png"), full_page=True)
    finally:
        context.close()


def test_retry_from_the_browser_posts_with_the_csrf_token(page, served, query):
    from playwright.sync_api import expect

    page.goto(served + "/")
    page.get_by_role("button", name="Retry failed files").click()
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

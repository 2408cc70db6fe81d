"""The dashboard over a real database with real runs: every page, search, tokens, CSRF, secrets."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from markupsafe import escape
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from chute.config.project import load_project
from chute.ui.app import create_app
from chute.ui.security import SESSION_COOKIE, TOKEN_COOKIE
from conftest import TOP_FILES, write

TOKEN = "a-long-enough-dashboard-token"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- pages ----------------------------------------------------------------------------------
def test_overview_shows_files_pending_failed_and_the_activity_charts(ui_client, stocks, query):
    write(stocks / "landing" / "late" / "newco.us.txt", "Date,Open\n")  # not a top company: not pending
    html = ui_client.get("/").text
    cards = {m[1]: int(m[2].replace(",", "")) for m in
             re.finditer(r'id="card-(\w[\w-]*)"><span class="n">([\d,]+)</span>', html)}
    open_letters = query("SELECT count(*) FROM chute.dead_letters WHERE status IN ('dead', 'requeued')")[0][0]
    assert open_letters == 1  # the failed file is a dead letter
    assert cards == {"pending": 0, "failed": 1, "loaded": TOP_FILES, "rejects": 0, "dead-letters": open_letters}
    # Both runs were minutes ago: the axis fits them (minutes, not 29 empty days and one bar).
    chart = re.search(r'<svg class="chart" id="chart-rows".*?</svg>', html, re.S)[0]
    starts = [dt.datetime.fromisoformat(s) for s in re.findall(r'<g class="bucket" data-start="([^"]+)"', chart)]
    assert len(starts) == 12 and starts[1] - starts[0] == dt.timedelta(minutes=1)
    buckets = re.findall(r'<g class="bucket" data-start="[^"]+" data-total="([\d.]+)"', chart)
    loaded = query("SELECT sum(rows_loaded) FROM chute.runs")[0][0]
    assert sum(float(b) for b in buckets) == loaded
    assert 'viewBox' not in chart.split(">")[0]  # text keeps the page's size at any width
    assert f"{loaded:,} rows and {TOP_FILES} file(s) loaded" in text_of(html)
    assert 'href="/actions/confirm?do=retry"' in html  # a failed file can be retried from here (asked first)


def test_overview_counts_a_new_file_of_a_top_company_as_pending(ui_client, stocks):
    top = (stocks / "reference" / "top_companies.txt").read_text().split(",")[1].strip().strip("'\"")
    write(stocks / "landing" / "late" / top, "Date,Open,High,Low,Close,Volume,OpenInt\n2017-01-02,1,2,1,2,5,0\n")
    assert re.search(r'id="card-pending"><span class="n">1</span>', ui_client.get("/").text)


def test_overview_shows_trigger_status_and_dead_letters_when_present(ui_client, cli, ui_project, db_url):
    import psycopg

    html = ui_client.get("/").text  # run 2 was started by `watch`
    assert re.search(r'id="card-watch"><span class="n small">idle</span>', html)
    assert '<a href="/runs/2">run 2</a> by watch, failed' in html
    with psycopg.connect(db_url, autocommit=True) as conn:  # what `chute watch` adds (its DDL, in short)
        conn.execute("""CREATE TABLE IF NOT EXISTS chute.dead_letters (dlq_id bigserial PRIMARY KEY, pipeline text NOT NULL,
                        kind text NOT NULL, name text NOT NULL, version text NOT NULL, error text,
                        status text NOT NULL DEFAULT 'dead')""")
        conn.execute("""INSERT INTO chute.dead_letters (pipeline, kind, name, version, status) VALUES
                        ('stocks', 'file', 'a.us.txt', 'x', 'dead'), ('stocks', 'event', 'e1', '1', 'requeued'),
                        ('stocks', 'file', 'b.us.txt', 'y', 'resolved'), ('other', 'file', 'c', 'z', 'dead')""")
        open_letters = conn.execute("SELECT count(*) FROM chute.dead_letters WHERE pipeline = 'stocks' "
                                    "AND status IN ('dead', 'requeued')").fetchone()[0]
    html = ui_client.get("/").text
    assert re.search(rf'id="card-dead-letters"><span class="n">{open_letters}</span>', html)  # open, this pipeline
    text = cli("status", "-p", ui_project.root, expect=None).output
    assert f"{open_letters} dead letters" in text and "triggers: idle (last: run 2 by watch, failed)" in text


def add_runs(db_url, runs: list[tuple[float, float]], pipeline: str = "stocks") -> None:
    """Finished runs of `pipeline` (days ago, seconds it took), 100 rows each into the stocks table."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        for days_ago, seconds in runs:
            conn.execute("""INSERT INTO chute.runs (pipeline, trigger, status, started_at, ended_at, files_seen,
                            files_loaded, rows_loaded, details)
                            VALUES (%s, 'schedule', 'succeeded', now() - make_interval(secs => %s),
                                    now() - make_interval(secs => %s), 1, 1, 100,
                                    '{"tables": {"historical_stocks_data": 100}}')""",
                         (pipeline, days_ago * 86400, days_ago * 86400 - seconds))


def test_trends_show_rows_per_table_durations_with_percentiles_and_files(ui_client, db_url, query):
    add_runs(db_url, [(0.1 + i / 100, float(i)) for i in range(1, 21)])  # 20 runs today: 1 s .. 20 s
    html = ui_client.get("/trends?range=day").text
    p50, p95 = query("""SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY s), percentile_disc(0.95) WITHIN GROUP (ORDER BY s)
                          FROM (SELECT extract(epoch FROM ended_at - started_at)::float AS s FROM chute.runs) r""")[0]
    from chute.ui.filters import duration

    assert re.search(rf'id="p50">{re.escape(duration(p50))}<', html) and re.search(rf'id="p95">{re.escape(duration(p95))}<', html)
    assert re.search(r'<svg class="chart" id="chart-duration"', html) and "polyline" in html
    rows = re.search(r'<svg class="chart" id="chart-table-rows".*?</svg>', html, re.S)[0]
    written = query("SELECT sum((details->'tables'->>'historical_stocks_data')::bigint) FROM chute.runs")[0][0]
    assert sum(float(t) for t in re.findall(r'data-total="([\d.]+)"', rows)) == written
    table = re.search(r'<table id="trend-tables">.*?</table>', html, re.S)[0]
    assert "historical_stocks_data" in table and f"{written:,}" in table
    files = re.search(r'<svg class="chart" id="chart-files".*?</svg>', html, re.S)[0]
    assert "1 files failed" in files  # run 2 met a broken file


def test_a_column_of_one_run_shows_both_its_p50_and_p95_dots(ui_client):
    # The fixture's runs, each alone in its column: p50 = p95. The p95 dot is drawn over a larger
    # p50 dot (a dot in a ring), so the colour of the legend's p50 stays visible.
    svg = re.search(r'<svg class="chart" id="chart-duration".*?</svg>', ui_client.get("/trends?range=day").text, re.S)[0]
    for column in re.findall(r'<g class="bucket".*?</g>', svg, re.S):
        dots = re.findall(r'<circle class="(s-p\d+)" cx="([\d.]+)%" cy="([\d.]+)" r="(\d+)"', column)
        assert [(css, int(r)) for css, _x, _y, r in dots] == [("s-p50", 5), ("s-p95", 3)]
        assert dots[0][1:3] == dots[1][1:3]  # the same place: drawn apart only by their size


def test_trends_axis_fits_the_data_of_the_range(ui_client, db_url):
    def columns(html: str, chart: str = "chart-files") -> list[str]:
        svg = re.search(rf'<svg class="chart" id="{chart}".*?</svg>', html, re.S)[0]
        return re.findall(r'<g class="bucket" data-start="([^"]+)"', svg)

    # Only the fixture's two runs, minutes ago: a month shows minutes, not 29 empty days and one bar.
    month = columns(ui_client.get("/trends?range=month").text)
    assert len(month) == 12
    assert dt.datetime.fromisoformat(month[1]) - dt.datetime.fromisoformat(month[0]) == dt.timedelta(minutes=1)
    assert columns(ui_client.get("/").text, "chart-rows") == columns(ui_client.get("/trends?range=month").text,
                                                                     "chart-rows")
    add_runs(db_url, [(20, 5.0)])  # one run twenty days ago
    month = columns(ui_client.get("/trends?range=month").text)
    assert 20 <= len(month) <= 22 and month[0].startswith(
        (dt.datetime.now().astimezone() - dt.timedelta(days=20)).date().isoformat())  # days, from that run's
    week = columns(ui_client.get("/trends?range=week").text)  # the old run is not in the week
    assert dt.datetime.fromisoformat(week[-1]) - dt.datetime.fromisoformat(week[0]) < dt.timedelta(hours=1)
    assert len(columns(ui_client.get("/trends?range=all").text)) == len(month)
    assert ui_client.get("/trends?range=year").status_code == 422


def test_schedules_page_shows_next_last_and_missed_fires_and_watermarks(ui_client, ui_project, db_url):
    import psycopg

    config = ui_project.root / "chute.toml"
    config.write_text(config.read_text() + """
[[schedules]]
name = "hourly"
cron = "0 * * * *"
missed = "run"

[extract.orders]
kind = "http"
url = "http://127.0.0.1:9/orders"

[extract.customers]
kind = "http"
url = "http://127.0.0.1:9/customers"
""")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO chute.schedule_fires (pipeline, schedule, due_at, status, cron, note) VALUES
            ('stocks', 'hourly', date_trunc('hour', now()) - interval '3 hours', 'fired', '0 * * * *', NULL),
            ('stocks', 'hourly', date_trunc('hour', now()) - interval '2 hours', 'missed', '0 * * * *', 'no watch'),
            ('stocks', 'hourly', date_trunc('hour', now()) - interval '1 hours', 'missed', '0 * * * *', 'no watch'),
            ('stocks', 'nightly', now() - interval '2 days', 'fired', '0 2 * * *', NULL)""")
        conn.execute("""INSERT INTO chute.watermarks (pipeline, extract, value, last_started_at, last_rows, last_files,
                        last_seconds) VALUES
            ('stocks', 'orders', '{"updated_at": "2024-05-01T12:00:00+00:00", "order_id": 4711}', now(), 1234, 2, 1.5),
            ('stocks', 'orders|shop=north', '{"order_id": 17}', now(), 5, 1, 0.2)""")
        last_fired = conn.execute("SELECT date_trunc('hour', now()) - interval '3 hours'").fetchone()[0]
    html = ui_client.get("/schedules").text
    row = text_of(re.search(r'<tr id="schedule-hourly".*?</tr>', html, re.S)[0])
    from chute.ui.filters import when

    assert when(last_fired) in row and re.search(r"\(3 h( \d\d min)? ago\)", row)
    next_hour = (dt.datetime.now().astimezone().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1))
    assert when(next_hour) in row
    assert re.search(r"\b1 2 last ", row) and "caught up by one run" in row  # fired once, missed twice
    assert "(no longer in chute.toml)" in text_of(re.search(r'<tr id="schedule-nightly".*?</tr>', html, re.S)[0])
    orders = text_of(re.search(r'<tr id="extract-orders".*?</tr>', html, re.S)[0])
    assert "order_id 4711, updated_at 2024-05-01 12:00:00+00:00" in orders  # describe(), not a dict
    assert "shop=north : order_id 17" in orders and "1,234 rows in 2 file(s)" in orders
    assert "never ran" in text_of(re.search(r'<tr id="extract-customers".*?</tr>', html, re.S)[0])
    assert "watched as a folder" in html and "each file as it lands" in html


def test_schedules_page_shows_batches_waiting_for_their_marker(stocks, db_url):
    config = stocks / "chute.toml"
    config.write_text(config.read_text().replace('[landing]\n', '[landing]\ntrigger = "marker"\n'))
    write(stocks / "landing" / "2024-05-01" / "a.us.txt", "x\n")
    write(stocks / "landing" / "2024-05-01" / ".SUCCESS", "")
    write(stocks / "landing" / "2024-05-02" / "b.us.txt", "x\n")
    with TestClient(create_app(load_project(stocks), db_url), base_url="http://127.0.0.1") as client:
        text = text_of(re.search(r'<div id="marker-batches">.*?</div>', client.get("/schedules").text, re.S)[0])
    waiting = text.split("waiting for it")[1]
    assert "2024-05-02" in waiting and "2024-05-01" not in waiting and "1 folder(s) with the marker" in text


def test_schedules_page_shows_the_s3_event_queue_depth(stocks, db_url, aws):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="chute-stocks")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="chute-stocks-dlq")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"event {i}")
    sqs.send_message(QueueUrl=dlq, MessageBody="gave up")
    config = stocks / "chute.toml"
    config.write_text(config.read_text().replace('path = "landing"', 'path = "s3://bucket/landing"'))
    with TestClient(create_app(load_project(stocks), db_url), base_url="http://127.0.0.1") as client:
        text = text_of(re.search(r'<dd id="s3-queue">.*?</dd>', client.get("/schedules").text, re.S)[0])
    assert "chute-stocks : 3 waiting · 0 in flight · 1 in the dead-letter queue" in text


def test_runs_list_shows_status_trigger_files_and_rows(ui_client, query):
    html = ui_client.get("/runs").text
    for run_id, trigger, status, loaded, failed, rows in query(
            "SELECT run_id, trigger, status, files_loaded, files_failed, rows_loaded FROM chute.runs"):
        row = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', html, re.S)[1]
        cells = text_of(row).split()
        assert cells[:3] == [str(run_id), status, trigger]
        assert f"{rows:,}" in cells and str(loaded) in cells and str(failed) in cells
    assert 'data-run="1"' not in ui_client.get("/runs?status=failed").text


def test_run_page_shows_node_timings_rows_and_files(ui_client, query):
    html = ui_client.get("/runs/1").text
    details, rows_read, rows_loaded = query("SELECT details, rows_read, rows_loaded FROM chute.runs WHERE run_id = 1")[0]
    for name in details["timings"]:
        assert f'id="node-{name}"' in html
    assert 'id="node-historical_stocks_data"' in html  # the pipeline's node, by name
    assert re.search(rf'id="rows-in">{rows_read:,}<', html) and re.search(rf'id="rows-out">{rows_loaded:,}<', html)
    for (name,) in query("SELECT name FROM chute.files WHERE run_id = 1"):
        assert name in html
    assert "No notification was recorded" in html  # none configured
    assert "No run log" not in html and 'id="run-log"' in html  # every run writes logs/run-<id>.json
    assert ui_client.get("/runs/999").status_code == 404


def test_run_page_shows_its_log_and_notifications_redacted(ui_client, ui_project, db_url, pg_cluster):
    import psycopg

    secret_url = db_url.replace("127.0.0.1", "db.example")
    write(ui_project.root / "logs" / "run-2.json", json.dumps({
        "events": [{"msg": "connecting", "url": secret_url}],
        "notifications": [{"kind": "webhook", "to": "https://hooks.example/chute", "ok": True, "attempts": 1}]}))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("""UPDATE chute.runs SET details = details || '{"notifications": [{"channel": "email",
                        "to": "ops@example.com", "subject": "run 2 failed"}]}' WHERE run_id = 2""")
    html = ui_client.get("/runs/2").text
    assert "connecting" in html and "logs/run-2.json" in html
    assert "ops@example.com" in html and "run 2 failed" in html  # recorded in the run's details
    assert "https://hooks.example/chute" in html  # recorded in its run log
    password = urlsplit(db_url).password
    assert password and password not in html
    assert "***@db.example" in html


def test_files_search_as_you_type_and_status_filter(ui_client, query):
    names = [n for (n,) in query("SELECT name FROM chute.files ORDER BY name")]
    wanted = names[0]
    html = ui_client.get("/files", params={"search": wanted[:4]}).text
    assert wanted in html
    assert all(n not in html for n in names if wanted[:4].lower() not in n.lower())
    # htmx asks for the rows only
    part = ui_client.get("/files", params={"search": wanted[:4]},
                         headers={"HX-Request": "true", "HX-Target": "file-rows"}).text
    assert part.lstrip().startswith('<div id="file-rows">') and "<html" not in part and wanted in part
    # LIKE wildcards are searched literally
    assert "No file matches" in ui_client.get("/files", params={"search": "%"}).text
    failed = ui_client.get("/files", params={"status": "failed"}).text
    (broken,) = [n for (n,) in query("SELECT name FROM chute.files WHERE status = 'failed'")]
    assert broken in failed and sum(n in failed for n in names) == 1
    sha = query("SELECT sha256 FROM chute.files WHERE name = %s", (wanted,))[0][0]
    assert wanted in ui_client.get("/files", params={"search": sha[:16]}).text


def test_file_page_shows_versions_runs_and_error(ui_client, query):
    file_id, name, sha, error = query("SELECT file_id, name, sha256, error FROM chute.files WHERE status = 'failed'")[0]
    html = ui_client.get(f"/files/{file_id}").text
    assert name in html and sha in html and escape(error) in html
    assert '<a href="/runs/2">2</a>' in html
    assert "No row of this file was rejected" in html
    assert ui_client.get("/files/424242").status_code == 404


def test_quarantine_without_a_rejects_table_is_an_empty_state(ui_client, db_url):
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE chute.rejects")
    assert 'id="card-rejects"' not in ui_client.get("/").text
    assert "Row quarantine is not in use" in ui_client.get("/files/1").text
    response = ui_client.get("/quarantine")
    assert response.status_code == 200 and 'id="no-quarantine"' in response.text
    export = ui_client.get("/quarantine.csv")
    assert export.status_code == 200 and export.text == ""


def test_quarantine_lists_rejected_rows_with_reasons_and_filters(rejects_client, query):
    total, files = query("SELECT count(*), count(DISTINCT file_name) FROM chute.rejects")[0]
    assert total and files >= 2
    html = rejects_client.get("/quarantine").text
    assert re.search(rf'id="reject-total">{total:,} rejected row', html)
    assert "above the maximum 1000000" in html and "volume_traded" in html
    assert html.count("<tr>") == 1 + min(total, 50)  # header + one page
    name, count = query("SELECT file_name, count(*) FROM chute.rejects GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    html = rejects_client.get("/quarantine", params={"file": name}).text
    assert re.search(rf'id="reject-total">{count:,} rejected row', html)
    for params in ({"column_name": "volume_traded"}, {"check_name": "max"}, {"reason": "MAXIMUM"},
                   {"replay_state": "pending"}):
        assert re.search(rf'id="reject-total">{total:,} rejected row', rejects_client.get("/quarantine", params=params).text)
    for params in ({"column_name": "open_value"}, {"reason": "no such reason"}, {"check_name": "regex"}):
        assert 'id="reject-total">0 rejected row' in rejects_client.get("/quarantine", params=params).text


def test_quarantine_exports_the_filtered_rows_as_csv(rejects_client, query):
    import csv
    import io

    name, count = query("SELECT file_name, count(*) FROM chute.rejects GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    response = rejects_client.get("/quarantine.csv", params={"file": name})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == count and {r["file_name"] for r in rows} == {name}
    assert all(int(r["value"]) > 1_000_000 and r["reason"] for r in rows)
    everything = list(csv.DictReader(io.StringIO(rejects_client.get("/quarantine.csv").text)))
    assert len(everything) == query("SELECT count(*) FROM chute.rejects")[0][0]


def test_file_and_run_pages_show_their_rejects(rejects_client, query):
    file_id, n = query("SELECT file_id, count(*) FROM chute.rejects GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    html = rejects_client.get(f"/files/{file_id}").text
    assert f"{n:,} rejected row(s) in quarantine" in html and f"/quarantine?file_id={file_id}" in html
    assert re.search(rf'id="reject-total">{n:,} rejected row',
                     rejects_client.get("/quarantine", params={"file_id": file_id}).text)
    run_total = query("SELECT rows_rejected FROM chute.runs WHERE run_id = 1")[0][0]
    assert re.search(rf'id="rows-rejected">{run_total:,}', rejects_client.get("/runs/1").text)
    overview = rejects_client.get("/").text
    total = query("SELECT count(*) FROM chute.rejects")[0][0]
    assert re.search(rf'id="card-rejects"><span class="n">{total:,}</span>', overview)


def test_pipeline_page_draws_nodes_datasets_and_tables(ui_client):
    html = ui_client.get("/pipeline").text
    svg = re.search(r'<svg class="dag".*?</svg>', html, re.S)[0]
    drawn = set(re.findall(r'data-kind="(\w+)" data-name="([^"]+)"', svg))
    assert {("node", "top_tickers"), ("node", "historical_stocks_data"), ("filter", "top_companies_only"),
            ("input", "prices"), ("reference", "top_companies"), ("dataset", "historical_stocks_data"),
            ("table", "public.historical_stocks_data")} <= drawn
    assert svg.count('class="edge"') >= 5
    # each node links to its timings in the latest run that ran it (run 2 only met a broken file)
    assert 'href="/runs/1#node-historical_stocks_data"' in svg


def test_tables_page_lists_each_table_with_its_rows_and_last_change(ui_client, query):
    html = ui_client.get("/tables").text
    count = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    row = re.search(r'<tr id="table-historical_stocks_data".*?</tr>', html, re.S)[0]
    assert f"{count:,}" in text_of(row) and 'href="/tables/historical_stocks_data"' in row
    assert 'href="/runs/1"' in row  # run 1 wrote it; run 2 only met a broken file
    assert 'data-fresh="unknown"' in row  # no fresh_within in chute.toml: no verdict


def test_table_page_shows_schema_contract_history_feeders_and_latest_rows(ui_client, ui_project, query):
    config = ui_project.root / "chute.toml"
    config.write_text(config.read_text() + "\n[tables.historical_stocks_data.contract.columns.close_value]\nmin = 0\n")
    html = ui_client.get("/tables/historical_stocks_data").text
    count = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    assert re.search(rf'id="row-count">{count:,}<', html)
    schema = re.search(r'<table id="schema">.*?</table>', html, re.S)[0]
    for column, actual, declared in (("stock_date", "date", "date"), ("company_name", "character varying(56)",
                                                                      "varchar(56)"),
                                     ("open_value", "double precision", "double")):
        assert re.search(rf"<td>{column}</td><td><code>{re.escape(actual)}</code></td><td><code>{re.escape(declared)}</code>",
                         schema)
    assert "differs" not in schema  # aliases of the same type are the same type
    assert "close_value</dt><dd class=\"wrap\">min 0" in html  # the contract, read from chute.toml now
    (written,) = query("SELECT (details->'tables'->>'historical_stocks_data')::bigint FROM chute.runs"
                       " WHERE run_id = 1")[0]
    assert written == count  # the runner records rows written per table
    assert re.search(r'<svg class="chart" id="table-history"', html)
    fed = re.search(r'<table id="table-runs">.*?</table>', html, re.S)[0]
    assert 'href="/runs/1"' in fed and 'href="/runs/2"' not in fed and f"{written:,}" in fed
    files = re.search(r'<table id="table-files">.*?</table>', html, re.S)[0]
    for (name,) in query("SELECT name FROM chute.files WHERE run_id = 1"):
        assert name in files
    preview = re.search(r'<table class="preview" id="latest-rows">.*?</table>', html, re.S)[0]
    assert preview.count("<tr>") == 1 + 20  # header + the 20 most recent rows
    last = query("SELECT company_name FROM historical_stocks_data ORDER BY ctid DESC LIMIT 1")[0][0]
    assert last in preview
    assert not re.search(r"\d\.\d{7,}", preview)  # no float noise like -4.811999999999983
    assert ui_client.get("/tables/no_such_table").status_code == 404


def test_table_page_flags_a_column_whose_type_differs_from_the_declared_one(ui_client, ui_project, db_url):
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE historical_stocks_data ALTER COLUMN volume_traded TYPE numeric")
    schema = re.search(r'<table id="schema">.*?</table>', ui_client.get("/tables/historical_stocks_data").text,
                       re.S)[0]
    row = re.search(r'<tr class="col-differs"><td>volume_traded</td>.*?</tr>', schema, re.S)
    assert row and "<code>numeric</code>" in row[0] and "<code>bigint</code>" in row[0]


def test_table_page_links_its_rejects_to_the_filtered_quarantine(rejects_client, query):
    html = rejects_client.get("/tables/historical_stocks_data").text
    pending = query("SELECT count(*) FROM chute.rejects WHERE target_table = 'public.historical_stocks_data'"
                    " AND replay_state = 'pending'")[0][0]
    assert pending > 0
    link = re.search(r'<a href="(/quarantine\?target_table=[^"]+)">([\d,]+) pending in quarantine</a>', html)
    assert link and int(link[2].replace(",", "")) == pending
    listed = rejects_client.get(link[1].replace("&amp;", "&")).text
    assert re.search(rf'id="reject-total">{pending:,} rejected row\(s\) match', listed)


def test_tables_loaded_with_chute_load_appear_with_their_runs_and_files(ui_client, cli, tmp_path, query):
    write(tmp_path / "prices.csv", "sku,price\na1,1.5\nb2,2.25\nc3,-4.811999999999983\n")
    cli("load", tmp_path / "prices.csv", "--into", "shop.prices")
    html = ui_client.get("/tables").text
    loads = re.search(r'<table id="load-tables".*?</table>', html, re.S)[0]
    row = re.search(r'<tr id="table-load:shop.prices".*?</tr>', loads, re.S)[0]
    assert 'href="/tables/load:shop.prices"' in row and "shop.prices" in row and "chute load" in row
    assert re.search(r'class="num rowcount">3<', row)
    page = ui_client.get("/tables/load:shop.prices").text
    (run_id,) = query("SELECT run_id FROM chute.runs WHERE pipeline = 'load:shop.prices'")[0]
    assert re.search(r'id="row-count">3<', page) and f'href="/runs/{run_id}"' in page
    assert "prices.csv" in re.search(r'<table id="table-files">.*?</table>', page, re.S)[0]
    assert "chute load … --into shop.prices" in page
    preview = re.search(r'<table class="preview" id="latest-rows">.*?</table>', page, re.S)[0]
    assert "-4.812<" in preview and "4.811999" not in preview  # floats for people
    assert ui_client.get("/tables/load:shop.nothing").status_code == 404


def test_fresh_within_must_be_an_interval(stocks):
    from chute.errors import ConfigError

    config = stocks / "chute.toml"
    config.write_text(config.read_text().replace('[tables.historical_stocks_data]\n',
                                                 '[tables.historical_stocks_data]\nfresh_within = "an hour"\n'))
    with pytest.raises(ConfigError, match="fresh_within.*not an interval.*30m, 1h"):
        load_project(stocks)


def test_pages_on_an_empty_database_show_empty_states(stocks, db_url):
    with TestClient(create_app(load_project(stocks), db_url), base_url="http://127.0.0.1") as client:
        for path in ("/", "/runs", "/files", "/quarantine", "/pipeline", "/tables", "/tables/historical_stocks_data"):
            response = client.get(path)
            assert response.status_code == 200, path
        assert "Nothing has run in the last 30 days" in client.get("/").text
        assert "not created yet" in client.get("/tables").text


def test_an_unreachable_database_is_a_clear_page_without_the_password(stocks):
    url = "postgresql://chute:hunter2secret@127.0.0.1:1/nope"
    with TestClient(create_app(load_project(stocks), url), base_url="http://127.0.0.1") as client:
        response = client.get("/")
    assert response.status_code == 503 and "cannot connect" in response.text
    assert "hunter2secret" not in response.text and "chute:***@" in response.text


def test_no_page_renders_the_database_password(ui_client, db_url):
    password = urlsplit(db_url).password
    for path in ("/", "/runs", "/runs/1", "/files", "/files/1", "/quarantine", "/pipeline", "/tables",
                 "/tables/historical_stocks_data"):
        html = ui_client.get(path).text
        assert password not in html, path
    assert "***@127.0.0.1" in ui_client.get("/").text


# -- security -------------------------------------------------------------------------------
def test_loopback_without_token_refuses_other_host_names(ui_project, db_url):
    client = TestClient(create_app(ui_project, db_url), base_url="http://evil.example")
    assert client.get("/").status_code == 400
    assert TestClient(create_app(ui_project, db_url), base_url="http://localhost:8765").get("/").status_code == 200


def test_token_is_checked_on_every_request_then_kept_in_a_cookie(ui_project, db_url):
    app = create_app(ui_project, db_url, token=TOKEN)
    client = TestClient(app, base_url="http://192.0.2.10:8765", follow_redirects=False)
    for path in ("/", "/runs", "/static/htmx.min.js", "/quarantine.csv"):
        assert client.get(path).status_code == 401, path
    assert client.get("/", params={"token": "wrong-" + TOKEN}).status_code == 401
    first = client.get("/runs", params={"token": TOKEN, "status": "failed"})
    assert first.status_code == 303 and first.headers["location"] == "/runs?status=failed"  # token out of the URL
    assert TOKEN_COOKIE in first.cookies
    assert client.get("/runs").status_code == 200  # the cookie carries it now
    bearer = TestClient(app, base_url="http://192.0.2.10:8765")
    assert bearer.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_actions_need_the_csrf_token_of_the_session(ui_client, query):
    assert ui_client.get("/actions/retry").status_code == 405  # actions are POST only
    html = ui_client.get("/actions/confirm?do=retry").text  # the confirmation carries the token
    assert "1 file(s) failed." in text_of(html)
    token = csrf_of(html)
    assert ui_client.post("/actions/retry", data={}).status_code == 403
    assert ui_client.post("/actions/retry", data={"csrf_token": "0" * 64}).status_code == 403
    other = TestClient(ui_client.app, base_url="http://127.0.0.1")
    other.get("/")  # another browser: another session, so this page's token is not valid there
    assert other.post("/actions/retry", data={"csrf_token": token}).status_code == 403
    assert query("SELECT count(*) FROM chute.runs WHERE trigger = 'ui'")[0][0] == 0
    ok = ui_client.post("/actions/retry", data={"csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/runs"
    for thread in threading.enumerate():
        if thread.name == "chute-ui-retry":
            thread.join()
    assert query("SELECT status, files_failed FROM chute.runs WHERE trigger = 'ui'") == [("failed", 1)]
    assert "retry failed files: failed" in text_of(ui_client.get("/runs").text)


@pytest.fixture
def branches_stage(tmp_path, cli, db_url):
    """The retail example's first stage, its API on a free port."""
    from chute.examples.retail.api import RetailServer

    server = RetailServer(port=0, seed=7, branches=3).start()
    cli("init", tmp_path / "retail", "--example", "retail")
    folder = tmp_path / "retail" / "branches"
    toml = folder / "chute.toml"
    toml.write_text(re.sub(r"http://127\.0\.0\.1:\d+", server.url, toml.read_text()), encoding="utf-8")
    yield folder
    server.close()


def finish_actions() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("chute-ui-"):
            thread.join(60)


def test_an_extraction_and_a_backfill_ask_first_then_say_what_they_did(branches_stage, db_url, query):
    with TestClient(create_app(load_project(branches_stage), db_url), base_url="http://127.0.0.1") as client:
        assert 'href="/actions/confirm?do=extract&amp;name=branches"' in client.get("/schedules").text
        confirm = client.get("/actions/confirm", params={"do": "extract", "name": "branches"}).text
        assert "watermark now: none yet" in text_of(confirm) and 'id="confirm"' in confirm
        assert not list((branches_stage / "landing").rglob("*.jsonl"))  # asking did nothing
        done = client.post("/actions/extract", data={"csrf_token": csrf_of(confirm), "name": "branches"},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/actions"
        finish_actions()
        parts = sorted((branches_stage / "landing").rglob("*.jsonl"))
        assert parts
        html = text_of(client.get("/actions").text)
        assert "run extraction branches succeeded" in html and f"{len(parts)} part file(s) written, 3 rows" in html
        # A backfill asks for its window, then leaves the watermark alone.
        ask = client.get("/actions/confirm", params={"do": "backfill", "name": "branches"}).text
        assert "Give the window first" in ask and 'id="confirm-form"' not in ask
        ask = client.get("/actions/confirm", params={"do": "backfill", "name": "branches", "since": "2020-01-01"}).text
        assert "The watermark stays where it is" in text_of(ask)
        client.post("/actions/backfill", data={"csrf_token": csrf_of(ask), "name": "branches", "since": "2020-01-01"})
        finish_actions()
        html = text_of(client.get("/actions").text)
        assert "backfill extraction branches since 2020-01-01 succeeded" in html
        assert "watermark left alone (backfill)" in html
        assert client.post("/actions/backfill", data={"csrf_token": csrf_of(ask), "name": "branches"}).status_code == 422
        assert client.post("/actions/extract", data={"csrf_token": csrf_of(ask), "name": "nope"}).status_code == 404
        assert client.post("/actions/extract", data={"name": "branches"}).status_code == 403  # CSRF as ever


def test_pages_send_a_strict_content_security_policy(ui_client):
    response = ui_client.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert SESSION_COOKIE in response.cookies or SESSION_COOKIE in ui_client.cookies
    assert "style=" not in response.text  # inline styles would be blocked by the policy
    assert ui_client.get("/static/htmx.min.js").text.startswith("/*! htmx 2.0.11")


# -- command line ---------------------------------------------------------------------------
def test_chute_ui_refuses_to_bind_beyond_loopback_without_a_token(cli, stocks, monkeypatch):
    monkeypatch.delenv("CHUTE_UI_TOKEN", raising=False)
    result = cli("ui", "-p", stocks, "--host", "0.0.0.0", expect=2)
    assert "--token" in result.output and "CHUTE_UI_TOKEN" in result.output
    assert "at least 16" in cli("ui", "-p", stocks, "--host", "0.0.0.0", "--token", "short", expect=2).output


def test_status_shows_the_overview_numbers(cli, ui_project):
    text = cli("status", "-p", ui_project.root, expect=None).output
    assert "0 pending" in text and "1 failed" in text
    numbers = json.loads(cli("status", "-p", ui_project.root, "--json").output)["overview"]
    assert numbers["pending"] == 0 and numbers["failed"] == 1 and numbers["loaded"] == TOP_FILES
    assert numbers["rejects"] == 0 and numbers["dead_letters"] == 1  # the failed file


@pytest.mark.parametrize("path", ["/runs/abc", "/files/abc"])
def test_bad_ids_are_a_client_error(ui_client, path):
    assert ui_client.get(path).status_code == 422


# -- replay -----------------------------------------------------------------------------------
def fix_contract(project) -> None:
    """The fix a user makes before a replay: the volume limit was too strict."""
    config = project.root / "chute.toml"
    config.write_text(config.read_text().replace("max = 1000000", "max = 1000000000"))


def test_replay_from_the_quarantine_page_loads_the_fixed_rows_exactly_once(rejects_client, rejects_project, query):
    name, count = query("SELECT file_name, count(*) FROM chute.rejects GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    before = query("SELECT count(*) FROM historical_stocks_data")[0][0]
    total = query("SELECT count(*) FROM chute.rejects")[0][0]
    fix_contract(rejects_project)
    assert 'id="replay-form"' in rejects_client.get("/quarantine", params={"file": name}).text
    # The button asks first: the confirmation says how many rows, from which files, then posts.
    page = rejects_client.get("/quarantine/replay", params={"file": name}).text
    assert f"Replay {count:,} rejected row(s)?" in text_of(page) and name in page
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">',
                           re.search(r'<form method="post" action="/quarantine/replay".*?</form>', page, re.S)[0]))
    assert form["file"] == name and form["csrf_token"] == csrf_of(page)
    done = rejects_client.post("/quarantine/replay", data=form, follow_redirects=False)
    assert done.status_code == 303
    result = rejects_client.get(done.headers["location"]).text
    assert f"{count:,} record(s) replayed, {count:,} row(s) loaded, 0 still failing" in text_of(result)
    assert query("SELECT count(*) FROM historical_stocks_data")[0][0] == before + count
    states = dict(query("SELECT replay_state, count(*) FROM chute.rejects GROUP BY 1"))
    assert states == {"replayed": count, "pending": total - count}
    assert query("SELECT trigger, status FROM chute.runs ORDER BY run_id DESC LIMIT 1") == [("replay", "succeeded")]
    # the same form again: nothing pending matches, nothing loads twice
    again = rejects_client.post("/quarantine/replay", data=form)
    assert "nothing to replay" in again.text
    assert query("SELECT count(*) FROM historical_stocks_data")[0][0] == before + count


def test_replay_needs_the_csrf_token(rejects_client, rejects_project, query):
    fix_contract(rejects_project)
    assert rejects_client.post("/quarantine/replay", data={"file": ""}).status_code == 403
    assert rejects_client.post("/quarantine/replay", data={"csrf_token": "f" * 64}).status_code == 403
    assert query("SELECT count(*) FROM chute.rejects WHERE replay_state = 'replayed'")[0][0] == 0

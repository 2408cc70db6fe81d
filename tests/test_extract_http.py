"""`kind = "http"` extractions: pages -> part files of batch_size records in the landing zone,
incremental by a cursor parameter with the watermark in the ledger, for_each rows of a query,
then `chute run` loads the JSON-lines parts into PostgreSQL. Real HTTP server, real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from chute.extract import run_extract
from chute.config.project import load_project

ORDERS = [{"id": i, "shop": "north" if i % 2 else "south", "total": i * 1.5,
           "updated": f"2025-01-01T00:{i:02d}:00Z"} for i in range(1, 12)]

PROJECT = """
[project]
name = "api"

[landing]
patterns = ["*.jsonl"]

[source]
format = "jsonl"

[pipeline]
input = "orders"

[tables.orders]
mode = "merge"
primary_key = ["id"]
columns = {{id = "int", shop = "text", total = "float", updated = "text"}}

[extract.orders]
kind = "http"
url = "{url}"
{extra}
"""


def project_at(tmp_path, url: str, extra: str = ""):
    (tmp_path / "chute.toml").write_text(PROJECT.format(url=url, extra=extra if "batch_size" in extra else extra + "\nbatch_size = 4"), encoding="utf-8")
    return load_project(tmp_path)


def serve_orders(api_server, path="/orders"):
    """Cursor pages of 3, filtered by ?since= on `updated`."""
    def orders(query, headers):
        rows = [o for o in ORDERS if o["updated"] > query.get("since", "")]
        start = int(query.get("cursor", 0))
        nxt = start + 3 if start + 3 < len(rows) else None
        return 200, {}, {"data": rows[start:start + 3], "next": nxt}

    api_server.route(path, orders)


def landed(project, files) -> list[dict]:
    return [json.loads(line) for f in files
            for line in (project.landing_path / f).read_text(encoding="utf-8").splitlines()]


CURSOR = """records = "data"
pagination = {style = "cursor", cursor_param = "cursor", cursor_path = "next"}
"""


def test_pages_become_parts_of_batch_size_records(tmp_path, api_server, db_url):
    serve_orders(api_server)
    project = project_at(tmp_path, api_server.url + "/orders", CURSOR)
    report = run_extract(project, "orders")
    assert report.ok, report.error
    assert report.rows == len(ORDERS)
    assert [f.rsplit("/", 1)[-1] for f in report.files] == ["orders_part1.jsonl", "orders_part2.jsonl",
                                                             "orders_part3.jsonl"]
    assert all(f.startswith("orders/year=") for f in report.files)
    assert landed(project, report.files) == ORDERS
    assert len(api_server.hits("/orders")) == 4  # 3 + 3 + 3 + 2


def test_incremental_by_cursor_param_with_the_watermark_in_the_ledger(tmp_path, api_server, db_url, cli, query):
    serve_orders(api_server)
    project = project_at(tmp_path, api_server.url + "/orders",
                         CURSOR + 'cursor_param = "since"\ncursor_field = "updated"\n')
    first = run_extract(project, "orders")
    assert first.rows == len(ORDERS) and first.watermark_after == ORDERS[-1]["updated"]
    assert query("SELECT value FROM chute.watermarks WHERE extract = 'orders'") == [(ORDERS[-1]["updated"],)]

    ORDERS.append({"id": 12, "shop": "north", "total": 18.0, "updated": "2025-01-01T00:30:00Z"})
    try:
        second = run_extract(project, "orders")
    finally:
        ORDERS.pop()
    assert second.rows == 1 and landed(project, second.files)[0]["id"] == 12
    assert api_server.hits("/orders")[-1][2]["since"] == ORDERS[-1]["updated"]

    # The parts are ordinary landing files: chute run loads them, exactly once.
    cli("run", "-p", tmp_path)
    cli("run", "-p", tmp_path)
    assert query("SELECT count(*), count(DISTINCT id), max(id) FROM orders") == [(12, 12, 12)]


def test_for_each_query_row_fills_the_url_and_its_records(tmp_path, api_server, db_url, query):
    with __import__("psycopg").connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE shops (shop text)")
        conn.execute("INSERT INTO shops VALUES ('north'), ('south')")
    for shop in ("north", "south"):
        api_server.route(f"/shops/{shop}/orders",
                         lambda q, h, shop=shop: (200, {}, [{k: v for k, v in o.items() if k != "shop"}
                                                           for o in ORDERS if o["shop"] == shop]))
    project = project_at(tmp_path, api_server.url + "/shops/{shop}/orders",
                         'for_each_query = "SELECT shop FROM shops ORDER BY shop"\nbatch_size = 100')
    report = run_extract(project, "orders", db_url=db_url)
    assert report.ok, report.error
    rows = landed(project, report.files)
    assert sorted(r["id"] for r in rows) == [o["id"] for o in ORDERS]
    assert all(r["shop"] == ("north" if r["id"] % 2 else "south") for r in rows)  # add_keys


def test_an_api_error_is_reported_with_url_and_status_and_keeps_the_watermark(tmp_path, api_server, db_url):
    api_server.route("/orders", lambda q, h: (403, {}, {"error": "forbidden"}))
    project = project_at(tmp_path, api_server.url + "/orders", 'cursor_param = "since"\ncursor_field = "updated"\n')
    report = run_extract(project, "orders")
    assert "/orders: HTTP 403 Forbidden" in report.error
    assert report.watermark_after is None and report.files == []


def test_for_each_message_alone_is_a_clear_error(tmp_path, api_server, db_url, cli):
    project_at(tmp_path, api_server.url + "/b/{id}", 'for_each = "message"')
    result = cli("extract", "-p", tmp_path, "--json", expect=None)
    assert result.exit_code != 0
    assert "for_each = 'message'" in result.output


@pytest.mark.parametrize("extra, message", [
    ('cursor_param = "since"', "needs both cursor_param and cursor_field"),
    ('for_each = "message"\nfor_each_query = "select 1"', "not both"),
    ('pagination = {style = "pages"}', "pagination.style"),
])
def test_bad_http_config_names_the_key(tmp_path, extra, message):
    from chute.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        project_at(tmp_path, "http://127.0.0.1:1/x", extra)

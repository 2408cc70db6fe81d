"""Incremental HTTP extraction that fans out (for_each_query, for_each = "message") keeps one
watermark per key: a key fetched after another never skips its records older than the other
key's latest. Real HTTP server, real PostgreSQL."""

from __future__ import annotations

import json

import psycopg

from chute.extract import run_extract
from chute.config.project import load_project

# Two shops with different histories: north is far ahead of south.
ORDERS = {"north": [{"id": 1, "updated": "2025-01-01T00:10:00Z"}, {"id": 2, "updated": "2025-01-01T00:50:00Z"}],
          "south": [{"id": 3, "updated": "2025-01-01T00:05:00Z"}, {"id": 4, "updated": "2025-01-01T00:20:00Z"}]}

PROJECT = """
[project]
name = "api"
[landing]
patterns = ["*.jsonl"]
[source]
format = "jsonl"
[extract.orders]
kind = "http"
url = "{url}/shops/{{shop}}/orders"
cursor_param = "since"
cursor_field = "updated"
start = "2025-01-01T00:00:00Z"
{fan_out}
"""


def serve(api_server):
    for shop in ORDERS:
        api_server.route(f"/shops/{shop}/orders", lambda q, h, shop=shop:
                         (200, {}, [o for o in ORDERS[shop] if o["updated"] > q.get("since", "")]))


def project_with(tmp_path, api_server, fan_out: str):
    (tmp_path / "chute.toml").write_text(PROJECT.format(url=api_server.url, fan_out=fan_out), encoding="utf-8")
    return load_project(tmp_path)


def ids(project, report) -> list[int]:
    return sorted(json.loads(line)["id"] for f in report.files
                  for line in (project.landing_path / f).read_text(encoding="utf-8").splitlines())


def sent_since(api_server, shop: str) -> str:
    return api_server.hits(f"/shops/{shop}/orders")[-1][2]["since"]


def test_for_each_query_keeps_a_watermark_per_key(tmp_path, api_server, db_url, query):
    serve(api_server)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE shops (shop text)")
        conn.execute("INSERT INTO shops VALUES ('north'), ('south')")
    project = project_with(tmp_path, api_server, 'for_each_query = "SELECT shop FROM shops ORDER BY shop"')

    first = run_extract(project, "orders", db_url=db_url)
    assert first.ok, first.error
    assert ids(project, first) == [1, 2, 3, 4]
    assert query("SELECT extract, value FROM chute.watermarks WHERE value IS NOT NULL ORDER BY 1") == [
        ("orders|shop=north", "2025-01-01T00:50:00Z"), ("orders|shop=south", "2025-01-01T00:20:00Z")]

    # South gets an order newer than its own watermark but older than north's.
    ORDERS["south"].append({"id": 5, "updated": "2025-01-01T00:30:00Z"})
    try:
        second = run_extract(project, "orders", db_url=db_url)
    finally:
        ORDERS["south"].pop()
    assert second.ok, second.error
    assert ids(project, second) == [5]  # with one shared watermark (00:50) it was skipped
    assert sent_since(api_server, "north") == "2025-01-01T00:50:00Z"
    assert sent_since(api_server, "south") == "2025-01-01T00:20:00Z"
    assert second.keyed_watermarks == {"orders|shop=south": "2025-01-01T00:30:00Z"}
    assert query("SELECT value FROM chute.watermarks WHERE extract = 'orders|shop=south'") == [
        ("2025-01-01T00:30:00Z",)]

    third = run_extract(project, "orders", db_url=db_url)
    assert third.files == [] and third.keyed_watermarks == {}  # each key resumes where it ended

    # A backfill leaves every key's watermark where it was.
    backfill = run_extract(project, "orders", db_url=db_url, since="2025-01-01T00:00:00Z")
    assert ids(project, backfill) == [1, 2, 3, 4]
    assert query("SELECT value FROM chute.watermarks WHERE extract = 'orders|shop=north'") == [
        ("2025-01-01T00:50:00Z",)]


def test_for_each_message_keys_resume_each_from_their_own_watermark(tmp_path, api_server, db_url, query):
    serve(api_server)
    project = project_with(tmp_path, api_server, 'for_each = "message"')
    assert ids(project, run_extract(project, "orders", db_url=db_url, keys=[{"shop": "north"}])) == [1, 2]
    # South's first message: from `start`, not from north's watermark.
    assert ids(project, run_extract(project, "orders", db_url=db_url, keys=[{"shop": "south"}])) == [3, 4]
    assert sent_since(api_server, "south") == "2025-01-01T00:00:00Z"
    assert run_extract(project, "orders", db_url=db_url, keys=[{"shop": "south"}]).files == []
    assert sent_since(api_server, "south") == "2025-01-01T00:20:00Z"

"""/metrics of `chute watch` for a chained stage: chute_queue_messages{stage,status} shows the
queue's depth (ready, leased, dead) as it is when scraped. Real watch process, real HTTP server,
real PostgreSQL."""

from __future__ import annotations

import json
import re
import urllib.request

import psycopg

from fixtures_chain import follower, upstream, write_projects
from fixtures_watch import wait_until


def queue_of(query) -> list[tuple]:
    """(status, attempts) of each message; nothing before the stage's first run made the queue."""
    try:
        return query("SELECT status, attempts FROM chute.queue ORDER BY message_id")
    except psycopg.errors.UndefinedTable:
        return []


def gauges(watch) -> dict[tuple[str, str], float]:
    text = urllib.request.urlopen(watch.metrics_url, timeout=10).read().decode()
    return {(stage, status): float(value) for stage, status, value in
            re.findall(r'^chute_queue_messages\{stage="([^"]+)",status="([^"]+)"\} (\S+)$', text, re.M)}


def test_watch_metrics_show_the_stage_queue_depth_at_scrape_time(tmp_path, api_server, db_url, cli, query,
                                                                   watch_process):
    api_server.route("/shops", lambda q, h: (200, {}, [{"shop_id": 1, "name": "a"}, {"shop_id": 2, "name": "b"}]))
    api_server.route("/shops/1/orders", lambda q, h: (200, {}, [{"order_id": 10}]))
    api_server.route("/shops/2/orders", lambda q, h: (500, {}, {"error": "down"}))
    # shop 2's orders always fail; the first failure backs off an hour, the second is its last.
    up, down = write_projects(tmp_path, upstream(api_server.url), follower(
        api_server.url, columns='order_id = "int", shop_id = "int"', follow="max_attempts = 2\npoll = 0.2",
        watch="retry_initial = 3600\nretry_max = 3600", extract="attempts = 1"))
    cli("extract", "-p", up)
    cli("run", "-p", up)

    watch = watch_process(down)  # its startup run takes both messages: shop 1 done, shop 2 backs off
    wait_until(lambda: queue_of(query) == [("done", 1), ("ready", 1)], what="the startup run")
    assert gauges(watch) == {("orders", "ready"): 1.0, ("orders", "leased"): 0.0, ("orders", "dead"): 0.0}

    # Its backoff ends; the watch's queue trigger takes it, it fails a second time: a dead letter.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE chute.queue SET available_at = now() WHERE status = 'ready'")
    wait_until(lambda: queue_of(query) == [("done", 1), ("dead", 2)], what="the dead letter")
    assert gauges(watch) == {("orders", "ready"): 0.0, ("orders", "leased"): 0.0, ("orders", "dead"): 1.0}

    # A message the upstream sends shows at the next scrape, before any run of the stage takes it.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO chute.queue (stage, upstream, payload, available_at) VALUES"
                     " ('orders', 'shops', %s, now() + interval '1 hour')", (json.dumps({"keys": [{"shop_id": 1}]}),))
    assert gauges(watch)[("orders", "ready")] == 1.0
    assert watch.terminate() == 0

"""Chained pipelines: an upstream's load enqueues messages in its own transaction; the stage
that follows it claims them, extracts per key, loads and acknowledges in one transaction;
failures back off, then become dead letters that `chute dlq retry` replays. Real HTTP server,
real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fixtures_chain import follower, upstream, write_projects

SHOPS = [{"shop_id": i, "name": f"shop {i}"} for i in (1, 2)]
ORDERS = {1: [{"order_id": 10, "total": 1.5}, {"order_id": 11, "total": 2.5}],
          2: [{"order_id": 20, "total": 3.0}],
          3: [{"order_id": 30, "total": 4.0}, {"order_id": 31, "total": 5.0}]}


def setup(tmp_path, api_server):
    broken: set[int] = set()
    api_server.route("/shops", lambda q, h: (200, {}, SHOPS))
    for shop in ORDERS:
        api_server.route(f"/shops/{shop}/orders", lambda q, h, shop=shop:
                         (500, {}, {"error": "down"}) if shop in broken else (200, {}, ORDERS[shop]))
    up, down = write_projects(tmp_path, upstream(api_server.url), follower(
        api_server.url, follow="max_attempts = 2", watch="retry_initial = 0.01\nretry_max = 0.01",
        extract="attempts = 2\nretry_initial = 0.01"))
    return up, down, broken


def run(cli, folder) -> dict:
    return json.loads(cli("run", "-p", folder, "--json", expect=None).output)


def expected_orders(shops) -> list[tuple]:
    return sorted((o["order_id"], s, o["total"]) for s in shops for o in ORDERS[s])


def test_the_follower_gets_the_upstream_keys_then_new_ones_exactly_once(tmp_path, api_server, db_url, cli, query):
    up, down, _ = setup(tmp_path, api_server)
    cli("extract", "-p", up)
    run(cli, up)  # nobody follows yet: no messages
    first = run(cli, down)  # subscribes: the upstream's present keys become messages
    assert first["status"] == "succeeded", first
    assert first["chain"]["claimed"] == 2 and first["chain"]["acknowledged"] == 2 and first["chain"]["backfilled"] == 2
    assert query("SELECT order_id, shop_id, total FROM orders ORDER BY 1") == expected_orders([1, 2])

    SHOPS.append({"shop_id": 3, "name": "shop 3"})
    try:
        cli("extract", "-p", up)
        upstream = run(cli, up)
    finally:
        SHOPS.pop()
    # The message was written by the upstream's load transaction: one per shop it loaded
    # (the re-extracted shops 1 and 2 are in the same new part, so they are sent again).
    sent = query("SELECT payload FROM chute.queue WHERE upstream_run = %s ORDER BY message_id", (upstream["run_id"],))
    assert [p["keys"] for (p,) in sent] == [[{"shop_id": 1}], [{"shop_id": 2}], [{"shop_id": 3}]]

    second = run(cli, down)
    assert second["chain"]["acknowledged"] == 3
    assert query("SELECT order_id, shop_id, total FROM orders ORDER BY 1") == expected_orders([1, 2, 3])
    assert query("SELECT status, count(*) FROM chute.queue GROUP BY 1") == [("done", 5)]
    again = run(cli, down)
    assert again["chain"]["claimed"] == 0
    assert query("SELECT count(*) FROM orders") == [(5,)]


def test_a_failing_stage_keeps_upstream_rows_dead_letters_then_replays(tmp_path, api_server, db_url, cli, query):
    up, down, broken = setup(tmp_path, api_server)
    cli("extract", "-p", up)
    run(cli, up)
    broken.add(2)
    first = run(cli, down)
    assert first["status"] == "failed" and first["chain"]["failed"] == 1 and first["chain"]["dead"] == 0
    assert "/shops/2/orders: HTTP 500" in first["error"]
    assert query("SELECT status, attempts FROM chute.queue ORDER BY message_id") == [("done", 1), ("ready", 1)]

    import time
    time.sleep(0.1)  # the backoff ([watch] retry_initial = 0.01 s)
    second = run(cli, down)
    assert second["chain"]["dead"] == 1  # [follow] max_attempts = 2
    assert query("SELECT count(*) FROM shops") == [(2,)]  # upstream work untouched
    assert query("SELECT order_id FROM orders ORDER BY 1") == [(10,), (11,)]

    listed = json.loads(cli("dlq", "list", "-p", down, "--json").output)["dead_letters"]
    dead = [d for d in listed if d["kind"] == "message"]
    assert len(dead) == 1 and "shop_id=2" in dead[0]["name"] and "HTTP 500" in dead[0]["error"]

    status = json.loads(cli("status", "-p", down, "--json").output)
    assert status["overview"]["queue"]["orders"]["dead"] == 1

    broken.clear()
    cli("dlq", "retry", "-p", down, "--all")
    replay = run(cli, down)
    assert replay["status"] == "succeeded" and replay["chain"]["revived"] == 1 and replay["chain"]["acknowledged"] == 1
    assert query("SELECT order_id, shop_id, total FROM orders ORDER BY 1") == expected_orders([1, 2])
    assert query("SELECT status FROM chute.dead_letters WHERE kind = 'message'") == [("resolved",)]
    run(cli, down)
    assert query("SELECT count(*), count(DISTINCT order_id) FROM orders") == [(3, 3)]


def test_a_crash_before_the_upstream_commit_leaves_neither_rows_nor_messages(tmp_path, api_server, db_url, cli, query):
    up, down, _ = setup(tmp_path, api_server)
    cli("extract", "-p", up)
    run(cli, up)
    run(cli, down)  # subscribed
    SHOPS.append({"shop_id": 3, "name": "shop 3"})
    try:
        cli("extract", "-p", up)
    finally:
        SHOPS.pop()
    crashed = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(up)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "CHUTE_CRASH_AT": "before_commit"})
    assert crashed.returncode == 86, crashed.stderr
    assert query("SELECT count(*) FROM shops") == [(2,)]
    assert query("SELECT count(*) FROM chute.queue WHERE status = 'ready'") == [(0,)]
    run(cli, up)  # the rerun loads the file and sends its messages, once
    assert query("SELECT count(*) FROM shops") == [(3,)]
    assert query("SELECT count(*) FROM chute.queue WHERE status = 'ready'") == [(3,)]
    run(cli, down)
    assert query("SELECT order_id, shop_id, total FROM orders ORDER BY 1") == expected_orders([1, 2, 3])


def test_watch_of_the_follower_runs_when_messages_arrive(tmp_path, api_server, db_url, cli, query, watch_process):
    from fixtures_watch import wait_until

    up, down, _ = setup(tmp_path, api_server)
    cli("extract", "-p", up)
    run(cli, up)
    def orders() -> int:
        return query("SELECT CASE WHEN to_regclass('orders') IS NULL THEN 0"
                     " ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM orders', false, true, '')))[1]::text::int END")[0][0]

    watch = watch_process(down)  # its startup run subscribes and takes the present keys
    wait_until(lambda: orders() == 3, what="the first orders")
    SHOPS.append({"shop_id": 3, "name": "shop 3"})
    try:
        cli("extract", "-p", up)
    finally:
        SHOPS.pop()
    run(cli, up)  # its commit enqueues; the watch's queue trigger starts a run
    wait_until(lambda: orders() == 5, what="the orders of shop 3")
    watch.wait_log("run (queue)")
    assert watch.terminate() == 0
    assert query("SELECT order_id, shop_id, total FROM orders ORDER BY 1") == expected_orders([1, 2, 3])

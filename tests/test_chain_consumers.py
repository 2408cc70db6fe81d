"""Several consumers of one chained stage: a slow consumer renews the leases of the messages it
claimed, so nobody else takes them; a consumer that finds the stage's extraction held by a peer
waits its turn instead of failing the message. Real HTTP server, real PostgreSQL, the consumers
are `chute run` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from fixtures_chain import follower, upstream, write_projects
from fixtures_watch import wait_until

SHOPS = [{"shop_id": i, "name": f"shop {i}"} for i in (1, 2)]
ORDERS = {1: [{"order_id": 10, "total": 1.5}, {"order_id": 11, "total": 2.5}], 2: [{"order_id": 20, "total": 3.0}]}


def setup(tmp_path, api_server, *, per_run: int):
    """Two stages; the API holds its answer for shop 1 until the returned event is set."""
    gate = threading.Event()

    def orders_of(shop):
        def answer(query, headers):
            if shop == 1:
                gate.wait(120)
            return 200, {}, ORDERS[shop]
        return answer

    api_server.route("/shops", lambda q, h: (200, {}, SHOPS))
    for shop in ORDERS:
        api_server.route(f"/shops/{shop}/orders", orders_of(shop))
    up, down = write_projects(tmp_path, upstream(api_server.url), follower(
        api_server.url, follow=f"messages_per_run = {per_run}", watch="lease = 1", extract="timeout = 120"))
    return up, down, gate


def consumer(folder) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chute.cli", "run", "-p", str(folder), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert out.strip(), err
    return json.loads(out)


def run(cli, folder) -> dict:
    return json.loads(cli("run", "-p", folder, "--json", expect=None).output)


def test_a_slow_consumer_renews_its_leases_and_a_second_consumer_takes_none(tmp_path, api_server, db_url, cli, query):
    up, down, gate = setup(tmp_path, api_server, per_run=100)
    cli("extract", "-p", up)
    run(cli, up)
    slow = consumer(down)
    try:
        wait_until(lambda: api_server.hits("/shops/1/orders"), what="the slow consumer's first request")
        # Past the lease it took when claiming ([watch] lease = 1 s): unrenewed, both would be claimable now.
        wait_until(lambda: query("SELECT count(*) = 2 AND bool_and(now() > updated_at + interval '1.5 seconds')"
                                 " FROM chute.queue WHERE status = 'leased'")[0][0], what="the first lease to pass")
        assert query("SELECT count(*) FROM chute.queue WHERE status = 'leased' AND lease_until > now()") == [(2,)]
        second = run(cli, down)
        assert second["chain"]["claimed"] == 0, second
    finally:
        gate.set()
    first = result_of(slow)
    assert first["status"] == "succeeded" and first["chain"]["acknowledged"] == 2, first
    assert query("SELECT status, attempts FROM chute.queue ORDER BY message_id") == [("done", 1), ("done", 1)]
    assert query("SELECT order_id, shop_id FROM orders ORDER BY 1") == [(10, 1), (11, 1), (20, 2)]
    assert len(api_server.hits("/shops/1/orders")) == 1  # fetched by one consumer, once


def test_a_consumer_waits_for_a_peer_holding_the_extraction_without_spending_an_attempt(
        tmp_path, api_server, db_url, cli, query):
    up, down, gate = setup(tmp_path, api_server, per_run=1)
    run(cli, down)  # subscribes while the upstream has nothing: its load sends the two messages
    cli("extract", "-p", up)
    run(cli, up)
    assert query("SELECT count(*) FROM chute.queue WHERE status = 'ready'") == [(2,)]
    first = consumer(down)  # claims shop 1's message and holds the extraction while the API stalls
    second = None
    try:
        wait_until(lambda: api_server.hits("/shops/1/orders"), what="the first consumer's request")
        second = consumer(down)  # claims shop 2's message and finds the extraction held
        wait_until(lambda: query("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'")[0][0],
                   what="the second consumer to wait for the extraction")
    finally:
        gate.set()
    one, two = result_of(first), result_of(second)
    for result in (one, two):
        assert result["status"] == "succeeded", result
        assert result["chain"]["claimed"] == 1 and result["chain"]["acknowledged"] == 1 and result["chain"]["failed"] == 0
    assert query("SELECT status, attempts FROM chute.queue ORDER BY message_id") == [("done", 1), ("done", 1)]
    assert query("SELECT order_id, shop_id FROM orders ORDER BY 1") == [(10, 1), (11, 1), (20, 2)]


def test_a_consumer_whose_files_a_peer_claimed_first_waits_for_the_peers_load(
        tmp_path, api_server, db_url, cli, query, monkeypatch):
    """Every run of a stage loads all of its new files, so a peer consumer that lists the landing
    zone first claims the files this consumer just extracted (CI met this race). The consumer
    then waits for the peer's load to commit instead of failing the message."""
    import time

    import psycopg

    from chute.config.project import load_project
    from chute.ledger.summary import RunSummary
    from chute.run.runner import Runner
    from chute.sources.selection import Selection

    up, down, gate = setup(tmp_path, api_server, per_run=1)
    gate.set()
    run(cli, down)  # subscribes
    cli("extract", "-p", up)
    run(cli, up)
    peers: list[threading.Thread] = []

    def a_peer_took_them(self, *, selection, details, commit_hooks):
        """This consumer's own load: a peer claimed its new files a moment before, and loads
        them (its claims held, as a run holds them, until its transaction commits)."""
        names = sorted(str(p.relative_to(down / "landing")) for p in (down / "landing").rglob("*") if p.is_file())
        peer = Runner(load_project(down), db_url, pipeline_name=self.pipeline, consume=False,
                      selection=Selection(only=names))
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("INSERT INTO chute.claims (pipeline, name, worker, expires_at)"
                         " SELECT %s, n, %s, now() + interval '1 minute' FROM unnest(%s::text[]) n",
                         (self.pipeline, peer.worker.id, names))
        thread = threading.Thread(target=lambda: (time.sleep(1.0), peer.run()))
        thread.start()
        peers.append(thread)
        return RunSummary(None, self.pipeline, "succeeded")  # nothing left for this run to load

    monkeypatch.setattr(Runner, "following", a_peer_took_them)
    result = run(cli, down)
    for thread in peers:
        thread.join(30)
    assert result["status"] == "succeeded", (result.get("error"), result.get("chain"))
    assert result["chain"]["acknowledged"] == 1 and result["chain"]["failed"] == 0, result
    assert query("SELECT status, attempts FROM chute.queue ORDER BY message_id") == [("done", 1), ("ready", 0)]
    assert query("SELECT order_id FROM orders ORDER BY 1") == [(10,), (11,)]

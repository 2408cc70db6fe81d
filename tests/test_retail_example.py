"""The retail example end to end: its API on a free loopback port, the three chained
stages branches -> salespersons -> sales on a real PostgreSQL; then a salesperson whose sales
answer 500: upstream rows stay, the message is a dead letter, `chute dlq retry` completes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from chute.examples.retail.api import RetailServer, retail_data


@pytest.fixture
def retail(tmp_path, cli):
    server = RetailServer(port=0, seed=7, branches=3).start()
    folder = tmp_path / "retail"
    cli("init", folder, "--example", "retail")
    for stage in ("branches", "salespersons", "sales"):
        toml = folder / stage / "chute.toml"
        toml.write_text(toml.read_text().replace("http://127.0.0.1:8780", server.url)
                        .replace("retry_initial = 1 ", "retry_initial = 0.05 "), encoding="utf-8")
    yield folder, server
    server.close()


def run(cli, folder) -> dict:
    return json.loads(cli("run", "-p", folder, "--json", expect=None).output)


def served(data) -> tuple[list, list, list]:
    branches = sorted((b["branch_id"], b["city"], b["opened"]) for b in data["branches"])
    people = sorted((p["employee_id"], p["branch_id"], p["name"]) for ps in data["salespersons"].values() for p in ps)
    sales = sorted((s["sale_id"], s["employee_id"], s["amount"]) for ss in data["sales"].values() for s in ss)
    return branches, people, sales


def in_db(query) -> tuple[list, list, list]:
    return (query("SELECT branch_id, city, opened::text FROM branches ORDER BY 1"),
            query("SELECT employee_id, branch_id, name FROM salespersons ORDER BY 1"),
            query("SELECT sale_id, employee_id, amount FROM sales ORDER BY 1"))


def test_three_chained_stages_load_what_the_api_serves(retail, cli, db_url, query):
    folder, server = retail
    cli("extract", "-p", folder / "branches")
    assert run(cli, folder / "branches")["status"] == "succeeded"
    for stage in ("salespersons", "sales"):
        summary = run(cli, folder / stage)
        assert summary["status"] == "succeeded", summary
        assert summary["chain"]["claimed"] == summary["chain"]["acknowledged"] > 0
    assert in_db(query) == served(retail_data(seed=7, branches=3))
    assert query("SELECT count(*) FROM sales WHERE sold_at IS NULL") == [(0,)]
    # Nothing left in the queues, and a second pass changes nothing.
    assert query("SELECT count(*) FROM chute.queue WHERE status <> 'done'") == [(0,)]
    for stage in ("salespersons", "sales"):
        assert run(cli, folder / stage)["chain"]["claimed"] == 0
    assert in_db(query) == served(retail_data(seed=7, branches=3))


def test_a_failing_sales_call_dead_letters_then_dlq_retry_completes(retail, cli, db_url, query):
    folder, server = retail
    data = retail_data(seed=7, branches=3)
    victim = next(e for e, sales in data["sales"].items() if sales)
    server.failing.add(victim)
    cli("extract", "-p", folder / "branches")
    run(cli, folder / "branches")
    run(cli, folder / "salespersons")
    for attempt in range(3):  # [follow] max_attempts = 3 in the sales stage
        summary = run(cli, folder / "sales")
        assert summary["status"] == "failed" and f"/salespersons/{victim}/sales: HTTP 500" in summary["error"]
        time.sleep(0.3)  # the message's backoff (retry_initial 0.05 s, doubling)
    assert summary["chain"]["dead"] == 1
    branches, people, sales = served(data)
    assert in_db(query)[:2] == (branches, people)  # upstream work stays
    assert query("SELECT count(*) FROM sales WHERE employee_id = %s", (victim,)) == [(0,)]
    dead = json.loads(cli("dlq", "list", "-p", folder / "sales", "--json").output)["dead_letters"]
    assert [d["kind"] for d in dead] == ["message"] and f"employee_id={victim}" in dead[0]["name"]

    server.failing.clear()
    cli("dlq", "retry", "-p", folder / "sales", "--all")
    replay = run(cli, folder / "sales")
    assert replay["status"] == "succeeded" and replay["chain"]["acknowledged"] == 1
    assert in_db(query) == served(data)
    assert query("SELECT count(*) = count(DISTINCT sale_id) FROM sales") == [(True,)]
    assert json.loads(cli("dlq", "list", "-p", folder / "sales", "--json").output)["dead_letters"] == []


def test_the_api_module_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "chute.examples.retail.api", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "--fail" in done.stdout


def test_init_creates_only_what_the_example_uses(tmp_path, cli):
    folder = tmp_path / "retail"
    created = json.loads(cli("init", folder, "--example", "retail", "--json").output)
    top = sorted(p.name for p in folder.iterdir())
    assert top == ["api.py", "branches", "generate.py", "sales", "salespersons"], top  # no unused landing/ etc.
    assert not any(c.rstrip("/") in ("landing", "reference", "processed") for c in created["created"])

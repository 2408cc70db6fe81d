"""Several workers share one landing zone and one database: each file is loaded by exactly
one of them; a claim of a dead worker is taken over after its lease (at once on the same host)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from fixtures_watch import csv_rows, drop, wait_until


def execute(db_url: str, statement: str, params=None) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement, params)


def items_count(query) -> int:
    try:
        return query("SELECT count(*) FROM items")[0][0]
    except Exception:
        return 0


def test_two_watch_processes_share_40_files_exactly_once(items_project, watch_process, db_url, query):
    project = items_project(watch="claim_files = 2")
    (project / "DELAY").write_text("0.05")  # each claim takes a moment, so both workers get some
    a = watch_process(project)
    b = watch_process(project)
    for i in range(40):
        drop(project, f"w{i:02}.csv", csv_rows(i * 5, 5))
    wait_until(lambda: items_count(query) == 200, what="all 40 files loaded")
    assert a.terminate() == 0 and b.terminate() == 0

    assert query("SELECT count(*), count(DISTINCT id) FROM items") == [(200, 200)]
    assert query("SELECT count(*), count(DISTINCT name) FROM chute.files WHERE status = 'loaded'") == [(40, 40)]
    # Both processes did work: the loads are spread over runs of two different workers.
    per_pid = query("SELECT r.pid, count(*) FROM chute.files f JOIN chute.runs r USING (run_id)"
                    " WHERE f.status = 'loaded' GROUP BY r.pid")
    assert {pid for pid, _ in per_pid} == {a.pid, b.pid}
    assert query("SELECT count(*) FROM chute.claims") == [(0,)]


def run_json(project) -> dict:
    result = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(project), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_live_claim_is_respected_and_stale_claim_taken_over(items_project, db_url, query):
    project = items_project()
    drop(project, "held.csv", csv_rows(1, 4))
    drop(project, "free.csv", csv_rows(10, 2))
    first = run_json(project)  # creates the ledger; loads both
    assert first["files_loaded"] == 2

    drop(project, "held2.csv", csv_rows(20, 3))
    # A worker on another machine holds held2.csv, its lease still running.
    execute(db_url, "INSERT INTO chute.workers (worker, pipeline, host, pid, expires_at)"
          " VALUES ('elsewhere:1:x', 'items', 'elsewhere', 1, now() + interval '1 hour')")
    execute(db_url, "INSERT INTO chute.claims (pipeline, name, worker, expires_at)"
          " VALUES ('items', 'held2.csv', 'elsewhere:1:x', now() + interval '1 hour')")
    second = run_json(project)
    assert second["files_loaded"] == 0 and second["claimed_elsewhere"] == 1
    assert query("SELECT count(*) FROM items WHERE id >= 20") == [(0,)]

    # That worker died: its lease lapses, and the next run takes the file.
    execute(db_url, "UPDATE chute.claims SET expires_at = now() - interval '1 second'")
    third = run_json(project)
    assert third["files_loaded"] == 1
    assert query("SELECT count(*) FROM items WHERE id >= 20") == [(3,)]


def test_dead_local_worker_loses_its_claims_at_once(items_project, db_url, query):
    project = items_project()
    drop(project, "a.csv", csv_rows(1, 2))
    run_json(project)
    drop(project, "b.csv", csv_rows(5, 2))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid of this host that no longer runs
    host = socket.gethostname()
    execute(db_url, "INSERT INTO chute.runs (pipeline, status, host, pid) VALUES ('items', 'running', %s, %s)", (host, gone.pid))
    execute(db_url, "INSERT INTO chute.workers (worker, pipeline, run_id, host, pid, expires_at)"
          " SELECT %s, 'items', max(run_id), %s, %s, now() + interval '1 hour' FROM chute.runs",
          (f"{host}:{gone.pid}:dead", host, gone.pid))
    execute(db_url, "INSERT INTO chute.claims (pipeline, name, worker, expires_at)"
          " VALUES ('items', 'b.csv', %s, now() + interval '1 hour')", (f"{host}:{gone.pid}:dead",))
    summary = run_json(project)
    assert summary["files_loaded"] == 1 and summary["claimed_elsewhere"] == 0
    assert query("SELECT count(*) FROM chute.runs WHERE status = 'abandoned'") == [(1,)]


def test_replace_mode_runs_stay_exclusive(items_project, db_url, query):
    import psycopg

    project = items_project()
    toml = (project / "chute.toml").read_text().replace("[tables.items]", "[tables.items]\nmode = \"replace\"")
    (project / "chute.toml").write_text(toml)
    drop(project, "a.csv", csv_rows(1, 2))
    with psycopg.connect(db_url, autocommit=True) as holder:  # another run of the pipeline holds the lock
        holder.execute("SELECT pg_advisory_lock(%s, hashtext('items'))", (0x63687574,))
        blocked = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(project)],
                                 capture_output=True, text=True, timeout=120)
    assert blocked.returncode == 2 and "in progress" in blocked.stderr
    assert run_json(project)["files_loaded"] == 1

"""`chute watch` as a real subprocess: files dropped into the folder are loaded exactly once,
incomplete / temporary / hidden files are not taken, SIGTERM stops cleanly, /metrics counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from fixtures_watch import csv_rows, drop, wait_until


def loaded_ids(query):
    return [r[0] for r in query("SELECT id FROM items ORDER BY id")]


def items_count(query) -> int:
    try:
        return query("SELECT count(*) FROM items")[0][0]
    except Exception:  # the table appears with the first run
        return 0


def test_watch_loads_complete_files_exactly_once(items_project, watch_process, db_url, query):
    project = items_project()
    landing = project / "landing"
    w = watch_process(project)

    # 1. a file written in one go (closed after writing)
    (landing / "a.csv").write_text(csv_rows(1, 3), encoding="utf-8")
    # 2. a temporary file renamed in; its temporary name is never taken
    drop(project, "b.csv", csv_rows(4, 2))
    # 3. hidden and temporary names stay untouched
    (landing / ".hidden.csv").write_text(csv_rows(100, 5), encoding="utf-8")
    (landing / "c.csv.part").write_text(csv_rows(200, 5), encoding="utf-8")
    # 4. a file written slowly: half, a pause while the watch runs other files, the rest
    with open(landing / "slow.csv", "w", encoding="utf-8") as slow:
        slow.write("id,value\n6,v6\n")
        slow.flush()
        wait_until(lambda: items_count(query) == 5, timeout=20, what=f"a.csv and b.csv loaded: {w.log()}")
        w.wait_log("5 rows")  # the run that took a and b ended while slow.csv was open
        slow.write("7,v7\n8,v8\n")
    wait_until(lambda: items_count(query) == 8, what="slow.csv loaded")
    assert loaded_ids(query) == list(range(1, 9))  # whole slow.csv, once; nothing of the hidden files
    assert query("SELECT rows_loaded FROM chute.files WHERE name = 'slow.csv'") == [(3,)]

    # Duplicate events: the same content again (rewritten, under another name) adds nothing.
    (landing / "a.csv").write_text(csv_rows(1, 3), encoding="utf-8")
    drop(project, "a-copy.csv", csv_rows(1, 3))
    wait_until(lambda: query("SELECT status FROM chute.files WHERE name = 'a-copy.csv'"), what="a-copy.csv seen")
    assert loaded_ids(query) == list(range(1, 9))
    assert query("SELECT status FROM chute.files WHERE name = 'a-copy.csv'") == [("skipped",)]
    names = {r[0] for r in query("SELECT name FROM chute.files")}
    assert names == {"a.csv", "b.csv", "slow.csv", "a-copy.csv"}

    metrics = urllib.request.urlopen(w.metrics_url, timeout=10).read().decode()
    assert 'chute_files_total{pipeline="items",status="loaded"} 3.0' in metrics
    assert 'chute_rows_loaded_total{pipeline="items"} 8.0' in metrics
    assert 'chute_event_to_loaded_seconds_count{pipeline="items"}' in metrics
    assert 'chute_run_duration_seconds_count{pipeline="items"}' in metrics

    assert w.terminate() == 0
    assert "stopped" in w.log()
    assert query("SELECT count(*) FROM chute.runs WHERE status = 'running'") == [(0,)]


def test_sigterm_mid_run_loses_nothing(items_project, watch_process, db_url, query):
    project = items_project(watch="claim_files = 1")
    (project / "DELAY").write_text("0.1")  # each file takes a while, so SIGTERM lands mid-run
    w = watch_process(project)
    for i in range(20):
        drop(project, f"f{i:02}.csv", csv_rows(i * 10, 10))
    wait_until(lambda: items_count(query) >= 10, what="the first file loaded")
    assert w.terminate() == 0
    log = w.log()
    assert "SIGTERM: finishing the files in hand" in log and "stopped" in log
    loaded_before = items_count(query)
    assert loaded_before < 200, "the stop came after everything was loaded: nothing was tested"
    # What was loaded is whole, nothing is left claimed or running, and the rest waits.
    assert query("SELECT count(*) FROM chute.claims") == [(0,)]
    assert query("SELECT count(*) FROM chute.runs WHERE status = 'running'") == [(0,)]
    assert query("SELECT count(*) FROM chute.files WHERE status <> 'loaded'") == [(0,)]

    (project / "DELAY").unlink()
    w2 = watch_process(project)  # its start-up run takes what is left
    wait_until(lambda: items_count(query) == 200, what="everything loaded after the restart")
    assert w2.terminate() == 0
    assert query("SELECT count(*), count(DISTINCT id) FROM items") == [(200, 200)]
    assert query("SELECT count(*) FROM chute.files WHERE status = 'loaded'") == [(20,)]


def test_sigkill_mid_run_then_restart_loads_exactly_once(items_project, watch_process, db_url, query):
    project = items_project(watch="claim_files = 1")
    (project / "DELAY").write_text("0.2")
    w = watch_process(project)
    for i in range(10):
        drop(project, f"k{i:02}.csv", csv_rows(i * 10, 10))
    wait_until(lambda: items_count(query) >= 10, what="the first file loaded")
    w.kill()  # SIGKILL: no clean-up at all, maybe mid-transaction
    assert w.proc.returncode == -signal.SIGKILL
    assert items_count(query) < 100, "the kill came after everything was loaded: nothing was tested"

    (project / "DELAY").unlink()
    w2 = watch_process(project)  # same host: the dead pid's claims are taken at once
    wait_until(lambda: items_count(query) == 100, what="everything loaded after the restart")
    assert w2.terminate() == 0
    assert query("SELECT count(*), count(DISTINCT id) FROM items") == [(100, 100)]
    assert query("SELECT status, count(*) FROM chute.runs GROUP BY status ORDER BY 1")[0] == ("abandoned", 1)


def test_watch_help_and_bad_project(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "chute.cli", "watch", "--help"], capture_output=True,
                               text=True, env=dict(os.environ), timeout=60)
    assert help_text.returncode == 0 and "--metrics-port" in help_text.stdout
    missing = subprocess.run([sys.executable, "-m", "chute.cli", "watch", "-p", str(tmp_path / "nope")],
                             capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert missing.returncode == 2 and "no chute.toml" in missing.stderr


def test_marker_mode_takes_a_local_batch_when_its_marker_lands(items_project, watch_process, query):
    """`[landing] trigger = "marker"` on a folder: a batch's files wait for its .SUCCESS, then
    load together in one run (the Spark-style _SUCCESS convention, without S3)."""
    project = items_project()
    config = project / "chute.toml"
    config.write_text(config.read_text().replace('patterns = ["*.csv"]', 'patterns = ["*.csv"]\ntrigger = "marker"'))
    w = watch_process(project)
    drop(project, "day1/a.csv", csv_rows(1, 2))
    drop(project, "day1/b.csv", csv_rows(3, 2))  # day1 has no marker yet
    drop(project, "day2/c.csv", csv_rows(5, 2))
    (project / "landing" / "day2" / ".SUCCESS").write_text("")
    wait_until(lambda: items_count(query) == 2, what=f"day2 loaded: {w.log()}")
    assert loaded_ids(query) == [5, 6]  # day1's files were complete but not marked: untouched
    (project / "landing" / "day1" / ".SUCCESS").write_text("")
    wait_until(lambda: items_count(query) == 6, what=f"day1 loaded: {w.log()}")
    runs = query("SELECT r.trigger, array_agg(f.name ORDER BY f.name) FROM chute.files f"
                 " JOIN chute.runs r USING (run_id) GROUP BY r.run_id, r.trigger ORDER BY r.run_id")
    assert runs == [("marker", ["day2/c.csv"]), ("marker", ["day1/a.csv", "day1/b.csv"])]
    assert w.terminate() == 0


def test_a_watch_run_that_quarantined_rows_says_so_in_its_log_line(items_project, watch_process, query):
    project = items_project()
    w = watch_process(project)
    drop(project, "mixed.csv", "id,value\n1,a\nnot-a-number,b\n3,c\n")
    line = next(line for line in w.wait_log("rejected into quarantine", what="the run's log line").splitlines()
                if "rejected into quarantine" in line)
    assert "2 rows, 1 rejected into quarantine (1 file(s) loaded with rejects)" in line
    assert w.terminate() == 0

"""The database going away mid-run: a real PostgreSQL of the test's own, stopped while a node
holds the run open. `chute run` ends with a clear message naming the database (password
masked) and exit status 3; `chute watch` waits for it and resumes when it is back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from chute.cli._common import EXIT_UNAVAILABLE
from chute.db.embedded import EmbeddedPostgres
from fixtures_watch import WatchProcess, csv_rows, drop, wait_until

TOML = """
[project]
name = "items"

[landing]
patterns = ["*.csv"]

[pipeline]
module = "pipeline.py"

[tables.items]
columns = {{ id = "integer", value = "text" }}

[watch]
debounce = 0.05
settle = 0.2
rescan = 2
lease = 3
retry_attempts = 2
retry_initial = 0.2
retry_max = 1
"""

# Holds the run open once: says so (SLEEPING), then sleeps while the test stops the server.
PIPELINE = '''
import time
from pathlib import Path

import polars as pl
from chute import node

HERE = Path(__file__).parent


@node(outputs="items")
def items(rows: pl.DataFrame) -> pl.DataFrame:
    hold = HERE / "HOLD"
    if hold.exists():
        hold.unlink()
        (HERE / "SLEEPING").write_text("yes")
        time.sleep(4)
    return rows
'''


@pytest.fixture
def server():
    """A PostgreSQL cluster of this test alone (stopping the session's would break the others)."""
    root = Path(tempfile.mkdtemp(prefix="chute-test-lost-"))
    root.chmod(0o755)
    cluster = EmbeddedPostgres(root / "pg", fast=True)
    cluster.start()
    yield cluster
    cluster.stop()
    import shutil

    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "items"
    (folder / "landing").mkdir(parents=True)
    (folder / "chute.toml").write_text(TOML.format(), encoding="utf-8")
    (folder / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    return folder


def rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM items").fetchone()[0]


def test_chute_run_ends_with_exit_3_and_a_clear_message_when_the_database_stops(server, project):
    url = server.url()
    drop(project, "a.csv", csv_rows(1, 5))
    (project / "HOLD").write_text("")
    run = subprocess.Popen([sys.executable, "-m", "chute.cli", "run", "-p", str(project), "--db", url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "COLUMNS": "300"})
    wait_until(lambda: (project / "SLEEPING").exists() or run.poll() is not None, 60, what="the node to hold the run")
    server.stop()
    out, err = run.communicate(timeout=120)
    assert run.returncode == EXIT_UNAVAILABLE, (out, err)
    assert "Traceback" not in out + err
    password = re.search(r"://[^:]+:([^@]+)@", url)[1]
    assert password not in out + err
    masked = re.sub(r"(://[^:]+:)[^@]+@", r"\1***@", url)
    message = " ".join(err.split())
    assert f"error: the database {masked} went away during the run" in message, message
    assert "run again when it is back" in message

    server.start()  # back: the next run loads the file, exactly once
    (project / "SLEEPING").unlink()
    done = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(project), "--db", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(url) == 5


def test_chute_watch_waits_for_the_database_and_resumes(server, project, tmp_path, monkeypatch):
    url = server.url()
    monkeypatch.setenv("CHUTE_DATABASE_URL", url)
    watch = WatchProcess(project, tmp_path / "watch.log")
    try:
        (project / "HOLD").write_text("")
        drop(project, "a.csv", csv_rows(1, 5))
        wait_until(lambda: (project / "SLEEPING").exists(), 60, what="the node to hold the run")
        server.stop()
        log = watch.wait_log("waiting for it: trying again every 1s", 60)
        assert "went away during the run" in log and "Traceback" not in log
        server.start()
        watch.wait_log("the database is back after", 60)
        wait_until(lambda: rows(url) == 5, 60, what="the file to load once the database is back")
    finally:
        watch.terminate()
    log = watch.log()
    assert "Traceback" not in log
    assert re.search(r"run \d+ succeeded in [0-9.]+s: 1 loaded", log), log

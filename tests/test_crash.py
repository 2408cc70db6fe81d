"""A crash between COPY and commit leaves no partial load; the next run completes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import TOP_FILES


def chute(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "chute.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_crash_before_commit_then_rerun_loads_exactly_once(stocks, db_url, query):
    crashed = chute("run", "-p", stocks, env_extra={"CHUTE_CRASH_AT": "before_commit"})
    assert crashed.returncode == 86, crashed.stderr  # the process died mid-run
    assert query("SELECT count(*) FROM historical_stocks_data")[0][0] == 0
    assert query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0] == 0
    assert query("SELECT status FROM chute.runs") == [("running",)]

    rerun = chute("run", "-p", stocks, "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["files_loaded"] == TOP_FILES
    counts = query("SELECT count(*), count(DISTINCT (company_name, stock_date)) FROM historical_stocks_data")[0]
    assert counts[0] == counts[1] == summary["rows_loaded"]
    assert query("SELECT status FROM chute.runs ORDER BY run_id") == [("abandoned",), ("succeeded",)]


def test_killed_process_leaves_no_staging_tables(stocks, db_url, query):
    chute("run", "-p", stocks, env_extra={"CHUTE_CRASH_AT": "before_commit"})
    assert query("SELECT count(*) FROM pg_class WHERE relname LIKE 'chute_stage%' AND relpersistence = 'p'")[0][0] == 0

"""`chute watch` keeps its connections and chute's schema checks between runs (db/kept.py):
a run reuses them, and one whose connection died meanwhile connects again and loads."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from chute.db.kept import KeptConnections
from chute.config.project import load_project
from chute.run.runner import Runner
from chute.sources.selection import Selection

TOML = """
[project]
name = "kept"

[landing]
patterns = ["*.csv"]

[tables.rows]
columns = { id = "bigint", name = "text" }
"""


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "chute.toml").write_text(TOML)
    return load_project(tmp_path)


def _drop(project, n: int) -> str:
    name = f"f{n}.csv"
    (project.root / "landing" / name).write_text("id,name\n" + "".join(f"{n * 10 + i},x{i}\n" for i in range(10)))
    return name


def _backends(db_url: str) -> set[int]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")}


def test_runs_of_one_process_reuse_their_connections(project, db_url, query):
    kept = KeptConnections()
    try:
        first = Runner(project, db_url, selection=Selection(only=[_drop(project, 1)]), kept=kept).run()
        backends = _backends(db_url)
        second = Runner(project, db_url, selection=Selection(only=[_drop(project, 2)]), kept=kept).run()
        assert first.status == second.status == "succeeded"
        assert len(backends) == 2  # the ledger's connection and the data connection, kept open
        assert _backends(db_url) == backends  # the second run opened none
        assert query("SELECT count(*) FROM rows")[0][0] == 20
    finally:
        kept.close()
    assert _backends(db_url) == set()


def test_a_run_whose_kept_connections_died_connects_again(project, db_url, query):
    kept = KeptConnections()
    try:
        assert Runner(project, db_url, selection=Selection(only=[_drop(project, 1)]), kept=kept).run().status == "succeeded"
        old = _backends(db_url)
        with psycopg.connect(db_url, autocommit=True) as conn:  # as a server restart would
            for pid in old:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        summary = Runner(project, db_url, selection=Selection(only=[_drop(project, 2)]), kept=kept).run()
        assert summary.status == "succeeded", summary.error
        assert [f.status for f in summary.files] == ["loaded"]
        assert query("SELECT count(*) FROM rows")[0][0] == 20
        assert _backends(db_url).isdisjoint(old)
    finally:
        kept.close()


def test_without_kept_connections_a_run_leaves_none_open(project, db_url):
    assert Runner(project, db_url, selection=Selection(only=[_drop(project, 1)])).run().status == "succeeded"
    assert _backends(db_url) == set()

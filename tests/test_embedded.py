"""The embedded PostgreSQL cluster, driven through `chute db`."""

from __future__ import annotations

import json
import os

import psycopg

from conftest import STOCK_FILES, TOP_FILES


def test_db_start_status_url_stop(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("CHUTE_DATABASE_URL", raising=False)
    project = tmp_path / "proj"  # pytest's tmp folders are 0700: as root, chute must place the cluster elsewhere
    project.mkdir()
    status = json.loads(cli("db", "status", "-p", project, "--json", expect=1).output)
    assert status["initialised"] is False and status["running"] is False
    cli("db", "start", "-p", project)
    try:
        url = cli("db", "url", "-p", project).output.strip()
        assert url.startswith("postgresql://chute:") and "@127.0.0.1:" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "chute"
        assert json.loads(cli("db", "status", "-p", project, "--json").output)["running"] is True
        password = project / ".chute" / "pg" / "password"
        assert oct(password.stat().st_mode & 0o777) == "0o600"
        if os.geteuid() == 0:
            assert (project / ".chute" / "pg").is_symlink()  # relocated where postgres can reach it
        cli("db", "start", "-p", project)  # idempotent
    finally:
        cli("db", "stop", "-p", project)
    assert json.loads(cli("db", "status", "-p", project, "--json", expect=1).output)["running"] is False


def test_run_uses_embedded_cluster_when_nothing_configured(stocks, cli, monkeypatch):
    monkeypatch.delenv("CHUTE_DATABASE_URL", raising=False)
    try:
        summary = json.loads(cli("run", "-p", stocks, "--json").output)
        assert summary["files_loaded"] == TOP_FILES
        url = cli("db", "url", "-p", stocks).output.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM historical_stocks_data").fetchone()[0] == summary["rows_loaded"]
    finally:
        cli("db", "stop", "-p", stocks)
    assert (stocks / ".chute" / "pg" / "data" / "PG_VERSION").exists()
    if os.geteuid() == 0:
        assert (stocks / ".chute" / "pg").stat().st_uid != 0  # run by the postgres user

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


def test_chute_load_outside_a_project_uses_one_default_cluster_wherever_it_runs(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("CHUTE_DATABASE_URL", raising=False)
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, rows in ((one, "a\n1\n"), (two, "a\n2\n3\n")):
        folder.mkdir()
        (folder / "data.csv").write_text(rows)
    from chute.db.embedded import default_cluster

    try:
        for folder in (one, two):  # run in each folder, as a user would
            monkeypatch.chdir(folder)
            cli("load", folder / "data.csv", "--into", "shared_t")
        monkeypatch.chdir(tmp_path)  # a folder that is not a project: the default cluster
        url = cli("db", "url").output.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM shared_t").fetchone()[0] == 3
        assert not (one / ".chute").exists() and not (two / ".chute").exists()
        listed = json.loads(cli("db", "list", "--json").output)
        assert any(c["project"].startswith("(default") and c["state"] == "running" for c in listed)
    finally:
        default_cluster().stop()


def test_db_list_and_prune_a_cluster_whose_project_was_deleted(stocks, cli, monkeypatch):
    import shutil

    monkeypatch.delenv("CHUTE_DATABASE_URL", raising=False)
    cli("db", "start", "-p", stocks)
    listed = {c["project"]: c for c in json.loads(cli("db", "list", "--json").output)}
    mine = listed[str(stocks.resolve())]
    assert mine["state"] == "running" and mine["project_exists"] is True and mine["bytes"] > 1_000_000
    data = mine["data"]
    shutil.rmtree(stocks)  # the clone deleted, its server still running
    listed = {c["project"]: c for c in json.loads(cli("db", "list", "--json").output)}
    assert listed[str(stocks.resolve())]["project_exists"] is False
    assert listed[str(stocks.resolve())]["state"] == "running"
    pruned = json.loads(cli("db", "prune", "--json").output)
    assert str(stocks.resolve()) in pruned["removed"]
    assert not os.path.exists(data)
    listed = {c["project"] for c in json.loads(cli("db", "list", "--json").output)}
    assert str(stocks.resolve()) not in listed
    import time

    from chute.db.embedded import EmbeddedPostgres

    deadline = time.time() + 10  # the orphaned server was told to stop
    while EmbeddedPostgres(stocks / ".chute" / "pg", home=__import__("pathlib").Path(data)).orphans() and time.time() < deadline:
        time.sleep(0.2)
    assert EmbeddedPostgres(stocks / ".chute" / "pg", home=__import__("pathlib").Path(data)).orphans() == []

"""Fixtures: one throwaway PostgreSQL cluster per test session (chute's own embedded
cluster, so that code is exercised too), a fresh database per test, and example projects."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from chute.cli.main import main
from chute.db.embedded import EmbeddedPostgres
from chute.examples.scaffold import create_project


pytest_plugins = ["fixtures_watch", "fixtures_aws", "fixtures_smtp", "fixtures_http", "fixtures_quality",
                  "fixtures_ui", "fixtures_deploy_aws", "fixtures_extract",
                  "fixtures_api", "fixtures_kedro"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def clusters_dir():
    """Where relocated embedded clusters go during the tests (instead of /var/lib/chute)."""
    folder = Path(tempfile.mkdtemp(prefix="chute-test-clusters-"))
    folder.chmod(0o755)
    os.environ["CHUTE_CLUSTERS_DIR"] = str(folder)
    yield folder
    for cluster in folder.iterdir():  # a server a test left running would outlive its removed folder
        EmbeddedPostgres(cluster).stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    root = Path(tempfile.mkdtemp(prefix="chute-test-pg-"))
    root.chmod(0o755)  # as root, the server runs as `postgres` and must reach its folder
    cluster = EmbeddedPostgres(root / "pg", fast=True)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db_url(pg_cluster, monkeypatch):
    """A new, empty database for this test; CHUTE_DATABASE_URL points at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_cluster.url(name)
    monkeypatch.setenv("CHUTE_DATABASE_URL", url)
    yield url
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def query(db_url):
    def run(sql: str, params=None):
        with psycopg.connect(db_url) as conn:
            return conn.execute(sql, params).fetchall()
    return run


STOCK_FILES = 12  # generated into the `stocks` fixture's landing zone
TOP_FILES = 8  # of which top_companies.txt names this many


@pytest.fixture
def stocks(tmp_path):
    """A stocks project with 12 generated files, 8 of them of top companies."""
    folder = tmp_path / "stocks"
    create_project(folder, "stocks", files=STOCK_FILES, seed=7, top=TOP_FILES)
    return folder


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str, expect: int | None = 0):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code}, output:\n{result.output}"
        return result
    return invoke


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is not beside the project)")
    return path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    os.utime(path)
    return path

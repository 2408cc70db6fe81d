"""Source databases for the extraction tests: a PostgreSQL database in the session's cluster
(beside the warehouse database of `db_url`), a SQLite file, and a MariaDB server started in a
temporary folder (skipped, saying why, when mariadbd is absent or does not start)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest


@pytest.fixture
def source_pg(pg_cluster):
    """A fresh PostgreSQL database to extract from: its SQLAlchemy-style URL."""
    name = f"src_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_cluster.url(name)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mariadb_server():
    """A throwaway mariadbd on a free loopback port: yields its base URL (mysql://root@host:port)."""
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    install = shutil.which("mariadb-install-db")
    if not server or not install:
        pytest.skip("mariadbd is not installed (scripts/ensure-mariadb.sh installs Debian's mariadb-server)")
    pytest.importorskip("pymysql")
    root = Path(tempfile.mkdtemp(prefix="chute-test-mariadb-"))
    port = _free_port()
    done = subprocess.run([install, "--no-defaults", f"--datadir={root / 'data'}", "--user=root",
                           "--auth-root-authentication-method=normal", "--skip-test-db"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"mariadb-install-db failed: {done.stderr.strip()[-300:]}")
    # As root (--user=root); no grant tables: the tests connect as root without a password.
    proc = subprocess.Popen([server, "--no-defaults", f"--datadir={root / 'data'}", f"--port={port}",
                             "--bind-address=127.0.0.1", f"--socket={root / 'sock'}", "--user=root",
                             "--skip-grant-tables", f"--log-error={root / 'error.log'}", "--skip-log-bin"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import pymysql

    deadline = time.monotonic() + 30
    while True:
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
            break
        except pymysql.err.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = (root / "error.log").read_text(errors="replace")[-500:] if (root / "error.log").exists() else ""
                shutil.rmtree(root, ignore_errors=True)
                pytest.skip(f"mariadbd did not start: {log}")
            time.sleep(0.2)
    yield f"mysql://root@127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def source_mariadb(mariadb_server):
    """A fresh MariaDB database: (URL, a function running SQL statements in it)."""
    import pymysql

    name = f"src_{uuid.uuid4().hex[:12]}"
    port = int(mariadb_server.rsplit(":", 1)[1])
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.select_db(name)

    def execute(statement: str, params=None):
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    yield f"{mariadb_server}/{name}", execute
    conn.cursor().execute(f"DROP DATABASE `{name}`")
    conn.close()

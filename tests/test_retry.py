"""Transient errors are retried with backoff until the database is back; terminal ones are not."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from chute.errors import ConfigError, DatabaseRefused, DatabaseUnavailable, TransientError
from chute.config.project import load_project
from chute.retry import RetryPolicy, is_transient, retrying
from chute.run.runner import Runner
from fixtures_watch import csv_rows, drop

FAST = RetryPolicy(attempts=5, initial=0.01, maximum=0.05, jitter=0.01)


class Proxy:
    """A TCP forwarder to PostgreSQL on a port that refuses connections until start()."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server: socket.socket | None = None

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self.server:
            self.server.close()


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_run_retries_while_the_database_is_unreachable_then_loads(items_project, db_url, query):
    project_dir = items_project()
    drop(project_dir, "a.csv", csv_rows(1, 5))
    project = load_project(project_dir)
    proxy = Proxy(urlsplit(db_url).port)
    attempts: list[BaseException] = []

    def on_retry(n, exc, wait):
        attempts.append(exc)
        if n == 2:
            proxy.start()  # the database comes back after two failed tries

    try:
        summary = retrying(lambda: Runner(project, via(db_url, proxy.port)).run(), FAST, what="run",
                           on_retry=on_retry)
    finally:
        proxy.close()
    assert len(attempts) == 2 and all(isinstance(e, DatabaseUnavailable) for e in attempts)
    assert summary.ok and summary.count("loaded") == 1
    assert query("SELECT count(*) FROM items") == [(5,)]


def test_retries_are_bounded(items_project, db_url):
    project = load_project(items_project())
    proxy = Proxy(urlsplit(db_url).port)  # never started: always refused
    calls = []

    def attempt():
        calls.append(1)
        return Runner(project, via(db_url, proxy.port)).run()

    with pytest.raises(DatabaseUnavailable):
        retrying(attempt, FAST, what="run")
    assert len(calls) == FAST.attempts


def test_terminal_errors_are_not_retried(items_project, db_url):
    project_dir = items_project()
    (project_dir / "chute.toml").write_text((project_dir / "chute.toml").read_text()
                                            + '\n[references]\nmissing = "nope.txt"\n')
    drop(project_dir, "a.csv", csv_rows(1, 2))
    calls = []

    def attempt():
        calls.append(1)
        summary = Runner(load_project(project_dir), db_url).run()
        if summary.error:
            raise ConfigError(summary.error)
        return summary

    with pytest.raises(ConfigError, match="nope.txt"):
        retrying(attempt, FAST, what="run")
    assert len(calls) == 1


def test_classification():
    import psycopg

    assert is_transient(DatabaseUnavailable("down"))
    assert is_transient(TransientError("throttled"))
    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert not is_transient(ConfigError("bad key"))
    assert not is_transient(ValueError("bad data"))

    class ClientError(Exception):  # botocore's, recognised by name and response
        def __init__(self, code, status):
            self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}

    assert is_transient(ClientError("SlowDown", 503))
    assert is_transient(ClientError("ThrottlingException", 400))
    assert not is_transient(ClientError("NoSuchKey", 404))


def test_a_wrong_password_or_database_is_terminal_and_a_stopped_server_transient(db_url, tmp_path):
    """Against a real PostgreSQL, on the errors' fields (not their text): a wrong password and an
    unknown database are refused for good - is_transient says no, chute's connect raises
    DatabaseRefused and `retrying` tries once; a stopped server, at connect time and under an open
    connection, is worth a retry. (A wrong password was once judged by its message.)"""
    import psycopg

    from chute.db.embedded import EmbeddedPostgres
    from chute.db.postgres import connect

    parts = urlsplit(db_url)
    wrong_password = urlunsplit(parts._replace(netloc=f"{parts.username}:wrong@{parts.hostname}:{parts.port}"))
    unknown_database = urlunsplit(parts._replace(path="/no_such_database"))
    for url in (wrong_password, unknown_database):
        with pytest.raises(psycopg.OperationalError) as raw:
            psycopg.connect(url, connect_timeout=10)
        assert not is_transient(raw.value), str(raw.value)
        calls = []

        def attempt(url=url):
            calls.append(1)
            return connect(url)

        with pytest.raises(DatabaseRefused):
            retrying(attempt, FAST, what="connect")
        assert len(calls) == 1

    cluster = EmbeddedPostgres(tmp_path / "pg", fast=True)  # its own: the shared one serves other tests
    cluster.start()
    try:
        conn = psycopg.connect(cluster.url(), autocommit=True)
        cluster.stop()
        with pytest.raises(psycopg.OperationalError) as dropped:
            conn.execute("SELECT 1")
        assert is_transient(dropped.value), str(dropped.value)
        with pytest.raises(psycopg.OperationalError) as raw:
            psycopg.connect(cluster.url(), connect_timeout=10)
        assert is_transient(raw.value), str(raw.value)
        with pytest.raises(DatabaseUnavailable):
            connect(cluster.url())
    finally:
        cluster.stop()

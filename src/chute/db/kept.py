"""Connections a long-running process keeps between its runs (`chute watch`).

A run of one small file is dominated by fixed costs: connecting (two connections, the ledger's
and the one that loads), and the schema checks of the ledger and target tables, a dozen
round trips. A watch keeps both connections open
and remembers the checks it made, so a file's rows are queryable sooner after it lands.

A connection is handed to one run at a time and taken back only when the run ended cleanly
(the connection idle, outside any transaction); one that saw an error is closed. A kept
connection is checked with a round trip before it is reused: the server may have restarted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from chute.db.postgres import connect, connect_loader

log = logging.getLogger("chute.db")


class KeptConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (role, url) -> an idle connection; role "ledger" (autocommit) or "loader" (connect_loader)
        self._idle: dict[tuple[str, str], psycopg.Connection] = {}
        self.ensured: set[tuple] = set()  # schema checks done: (url, what) — forgotten after a failed run

    def psycopg(self, url: str) -> psycopg.Connection:
        """The ledger's connection (autocommit)."""
        return self._take("ledger", url, connect)

    def give_psycopg(self, url: str, conn: psycopg.Connection, ok: bool) -> None:
        self._give("ledger", url, conn, ok)

    def loader(self, url: str) -> psycopg.Connection:
        """The connection that writes data in one transaction (connect_loader)."""
        return self._take("loader", url, connect_loader)

    def give_loader(self, url: str, conn: psycopg.Connection, ok: bool) -> None:
        self._give("loader", url, conn, ok)

    def _take(self, role: str, url: str, new: Callable[[str], psycopg.Connection]) -> psycopg.Connection:
        with self._lock:
            conn = self._idle.pop((role, url), None)
        if conn is not None:
            try:
                conn.execute("SELECT 1")
                if not conn.autocommit:
                    conn.rollback()  # end the transaction the check opened
                return conn
            except psycopg.Error:
                log.info("a kept %s connection was gone; connecting again", role)
                _close(conn)
        return new(url)

    def _give(self, role: str, url: str, conn: psycopg.Connection, ok: bool) -> None:
        """Keep a connection the run left idle and clean; close any other."""
        if ok and not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self._lock:
                old, self._idle[(role, url)] = self._idle.get((role, url)), conn
            if old is not None and old is not conn:
                _close(old)
        else:
            _close(conn)

    def forget_checks(self, url: str) -> None:
        self.ensured = {e for e in self.ensured if e[0] != url}

    def close(self) -> None:
        with self._lock:
            idle = list(self._idle.values())
            self._idle.clear()
        for conn in idle:
            _close(conn)


def _close(conn) -> None:
    try:
        conn.close()
    except Exception:  # already gone
        pass

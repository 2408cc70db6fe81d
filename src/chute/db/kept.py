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

import psycopg

from .postgres import connect, connect_loader

log = logging.getLogger("chute.db")


class KeptConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pg: dict[str, psycopg.Connection] = {}
        self._loader: dict[str, psycopg.Connection] = {}
        self.ensured: set[tuple] = set()  # schema checks done: (url, what) — forgotten after a failed run

    # -- psycopg: the ledger's connection --------------------------------------------------
    def psycopg(self, url: str) -> psycopg.Connection:
        with self._lock:
            conn = self._pg.pop(url, None)
        if conn is not None:
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                log.info("a kept database connection was gone; connecting again")
                conn.close()
        return connect(url)

    def give_psycopg(self, url: str, conn: psycopg.Connection, ok: bool) -> None:
        if ok and not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self._lock:
                old, self._pg[url] = self._pg.get(url), conn
            if old is not None and old is not conn:
                old.close()
        else:
            conn.close()

    # -- the connection that writes data (connect_loader) ---------------------------------
    def loader(self, url: str) -> psycopg.Connection:
        with self._lock:
            conn = self._loader.pop(url, None)
        if conn is not None:
            try:
                conn.execute("SELECT 1")
                conn.rollback()  # end the transaction the check opened (not autocommit)
                return conn
            except psycopg.Error:
                log.info("a kept data connection was gone; connecting again")
                _close(conn)
        return connect_loader(url)

    def give_loader(self, url: str, conn: psycopg.Connection, ok: bool) -> None:
        if ok and not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self._lock:
                old, self._loader[url] = self._loader.get(url), conn
            if old is not None and old is not conn:
                _close(old)
        else:
            _close(conn)

    def forget_checks(self, url: str) -> None:
        self.ensured = {e for e in self.ensured if e[0] != url}

    def close(self) -> None:
        with self._lock:
            pg, loader = list(self._pg.values()), list(self._loader.values())
            self._pg.clear()
            self._loader.clear()
        for conn in pg:
            conn.close()
        for conn in loader:
            _close(conn)


def _close(conn) -> None:
    try:
        conn.close()
    except Exception:  # already gone
        pass

"""A heartbeat: a daemon thread that renews leases in the ledger while work runs.

    Heartbeat(db_url, every, beat)   calls beat(conn) every `every` seconds, each call in its own
                                     transaction on the thread's own connection, until stop()

Used by workers.Worker (its row and its file claims) and by chain.consume (the messages it
claimed). A beat that fails (the database is away) is logged and tried again at the next
one; if the outage outlasts the lease, the lease lapses and another process takes the work,
which the ledger's exactly-once guards make harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from chute.db.postgres import connect

log = logging.getLogger("chute.heartbeat")


class Heartbeat:
    def __init__(self, db_url: str, every: float, beat: Callable[[psycopg.Connection], None], name: str):
        self.db_url = db_url
        self.every = every
        self.beat = beat
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Heartbeat":
        self._thread = threading.Thread(target=self._run, name=f"chute-heartbeat-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.every):
            try:
                if conn is None or conn.closed:
                    conn = connect(self.db_url)
                with conn.transaction():
                    self.beat(conn)
            except Exception as exc:  # the database is away: keep trying; the lease may lapse
                log.warning("heartbeat of %s failed: %s", self.name, exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

"""`chute watch` of a following stage: a run whenever messages wait in its queue.

Polls chute.queue every [follow] poll seconds (a cheap indexed count). One request at a time:
while a run it asked for is pending, it does not ask again (the run claims every message
ready by then, up to [follow] messages_per_run, and the next look asks for the rest).
"""

from __future__ import annotations

import logging
import threading

from ..db.postgres import connect
from ..triggers.base import Emit, RunRequest, Trigger
from . import queue

log = logging.getLogger("chute.chain")


class QueueTrigger(Trigger):
    name = "queue"

    def __init__(self, db_url: str, stage: str, poll: float):
        self.db_url = db_url
        self.stage = stage
        self.poll = poll
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return f"queue of stage {self.stage!r} (chute.queue, every {self.poll:g}s)"

    def start(self, emit: Emit) -> None:
        self._thread = threading.Thread(target=self._loop, args=(emit,), name="chute-queue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self, emit: Emit) -> None:
        conn = None
        while not self._stopping.wait(self.poll):
            if not self._idle.is_set():
                continue
            try:
                if conn is None or conn.closed:
                    conn = connect(self.db_url)
                n = queue.waiting(conn, self.stage) + queue.revivable(conn, self.stage)
            except Exception as exc:  # the database is away: look again later
                log.debug("queue not readable: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if n:
                self._idle.clear()
                emit(RunRequest("queue", f"{n} message(s) waiting for stage {self.stage}",
                                done=lambda ok: self._idle.set()))
        if conn is not None:
            conn.close()

"""`chute watch` of a following stage: a run whenever messages wait in its queue.

Polls chute.queue every [follow] poll seconds (a cheap indexed count). One request at a time:
while a run it asked for is pending, it does not ask again (the run claims every message
ready by then, up to [follow] messages_per_run, and the next look asks for the rest).
"""

from __future__ import annotations

import logging
import threading

from chute.db.postgres import connect
from chute.watch.trigger import Emit, PollingTrigger, RunRequest
from chute.ledger import queue

log = logging.getLogger("chute.chain")


class QueueTrigger(PollingTrigger):
    name = "queue"

    def __init__(self, db_url: str, stage: str, poll: float):
        super().__init__()
        self.db_url = db_url
        self.stage = stage
        self.interval = poll
        self._idle = threading.Event()  # cleared while a run this trigger asked for is pending
        self._idle.set()
        self._conn = None

    def describe(self) -> str:
        return f"queue of stage {self.stage!r} (chute.queue, every {self.interval:g}s)"

    def poll(self, emit: Emit) -> None:
        if not self._idle.is_set():
            return
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.db_url)
            n = queue.waiting(self._conn, self.stage) + queue.revivable(self._conn, self.stage)
        except Exception as exc:  # the database is away: look again later
            log.debug("queue not readable: %s", exc)
            self.closed()
            return
        if n:
            self._idle.clear()
            emit(RunRequest("queue", f"{n} message(s) waiting for stage {self.stage}",
                            done=lambda ok: self._idle.set()))

    def closed(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

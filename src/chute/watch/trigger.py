"""What every trigger provides to `chute watch`: run requests, and a way to stop.

A trigger watches one thing (a local folder, an SQS queue of S3 events, a cron schedule,
a batch marker) and, when it sees something worth a run, hands the watch service a
`RunRequest` through the `emit` callback it was started with. The service owns everything
else: it coalesces requests that arrive close together into one run, runs the pipeline
(the ledger decides what is new, so a request never has to be exact), retries transient
failures, and then calls `request.done(ok)` so the trigger can acknowledge its event.

    class MyTrigger(Trigger):
        name = "my-trigger"

        def start(self, emit):          # return quickly; do the waiting on your own thread
            self._thread = threading.Thread(target=self._loop, args=(emit,), daemon=True)
            self._thread.start()

        def stop(self):                 # idempotent; after it returns, emit is never called again
            self._stopping.set()
            self._thread.join()

Rules a trigger keeps:

- `emit` is thread-safe and never blocks for long; call it from any thread.
- A request is advice, not a command: "something may be new". Re-delivered or duplicate
  events are harmless because the ledger loads each content exactly once. So a trigger never
  needs its own de-duplication, and may emit more often than needed.
- `done(ok)` is called exactly once per request, after the run that covered it ended
  (ok=True: every file it saw was settled in the ledger, loaded or recorded as failed /
  dead-lettered; ok=False: the run could not happen, e.g. the database stayed unreachable
  through every retry, or the service stopped first). An SQS trigger deletes its message on
  True and leaves it on False, so the queue redelivers it (and its redrive policy moves it
  to the dead-letter queue after maxReceiveCount).
- `names`, when given, are landing-zone names (relative, '/'-separated, as in
  `FileEntry.name`) the event is about; the run is then limited to them (plus nothing
  else), which spares a full listing of a big bucket. Empty means "look at everything".
- `prefix`, when given, limits the run to names under it (a batch marker's folder).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field


def _never(ok: bool) -> None:
    return None


@dataclass
class RunRequest:
    trigger: str  # recorded in chute.runs.trigger: 'startup', 'folder', 'schedule', 's3', 'marker', ...
    reason: str  # for the log and the run record: "2 file(s) landed: a.csv, b.csv"
    names: tuple[str, ...] = ()  # landing-zone names the event concerns; () = the whole zone
    prefix: str | None = None  # only names under this prefix (a batch)
    event_time: float = field(default_factory=time.time)  # when the earliest event happened (latency metric)
    done: Callable[[bool], None] = _never  # called once after the covering run ended (see the module doc)
    details: dict = field(default_factory=dict)  # extra facts kept in chute.runs.details['trigger']


Emit = Callable[[RunRequest], None]


class Trigger(ABC):
    """One source of run requests. See the module docstring for the contract."""

    name: str = "trigger"

    @abstractmethod
    def start(self, emit: Emit) -> None:
        """Begin watching; return at once (wait on your own daemon thread)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop watching and join your threads. Idempotent. No emit after it returns."""

    def describe(self) -> str:
        """One line for the service's start-up log."""
        return self.name


class PollingTrigger(Trigger):
    """A trigger that looks at something every `interval` seconds on its own daemon thread.

    Subclasses set `interval` and write `poll(emit)` (it handles its own errors: the next
    look comes anyway), and `closed()` to release what the polls held.
    """

    interval: float = 60.0

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def poll(self, emit: Emit) -> None:
        """One look; emit a RunRequest when something is worth a run."""

    def closed(self) -> None:
        """Called on the polling thread once it stops."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self, emit: Emit) -> None:
        self._thread = threading.Thread(target=self._loop, args=(emit,), name=f"chute-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self, emit: Emit) -> None:
        try:
            while not self._stopping.wait(self.interval):
                self.poll(emit)
        finally:
            self.closed()

"""Cron schedules ([[schedules]] in chute.toml) that start runs, with croniter.

Every fire time is written to chute.schedule_fires. When the service starts, the fire times
between a schedule's last recorded one and now were missed (no `chute watch` was running):
each is recorded with status 'missed' and logged, never skipped silently, and with
`missed = "run"` one catch-up run is started for them. A fire whose run could not happen
(the service stopped first, or the database stayed down) is turned into 'missed' too.

The clock is injectable (`clock`, `wait`) so tests need not wait for a real minute; a 6th
cron field gives seconds ("*/2 * * * * *").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import psycopg
from croniter import croniter

from chute.ledger import schema
from chute.db.postgres import connect
from chute.config.project import Schedule
from chute.watch.trigger import Emit, RunRequest, Trigger

log = logging.getLogger("chute.watch")

MAX_MISSED_RECORDED = 1000  # a schedule every second, down for a week: record the first 1000, log the count


class ScheduleTrigger(Trigger):
    name = "schedule"

    def __init__(self, schedules: list[Schedule], db_url: str, pipeline: str, *,
                 clock: Callable[[], float] = time.time):
        self.schedules = schedules
        self.db_url = db_url
        self.pipeline = pipeline
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.missed: dict[str, list[datetime]] = {}  # found at start-up, for the log and tests

    def describe(self) -> str:
        return "schedules " + ", ".join(f"{s.name} ({s.cron})" for s in self.schedules)

    def start(self, emit: Emit) -> None:
        now = self.clock()
        with connect(self.db_url) as conn:
            schema.ensure_schema(conn)
            for s in self.schedules:
                self._report_missed(conn, s, now, emit)
        self._thread = threading.Thread(target=self._loop, args=(emit, now), name="chute-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- missed fires ----------------------------------------------------------------------
    def _report_missed(self, conn: psycopg.Connection, s: Schedule, now: float, emit: Emit) -> None:
        row = conn.execute("SELECT max(due_at) FROM chute.schedule_fires WHERE pipeline = %s AND schedule = %s",
                           (self.pipeline, s.name)).fetchone()
        last = row[0] if row else None
        if last is None:
            return  # never ran before: nothing could be missed
        missed: list[datetime] = []
        it = croniter(s.cron, last)
        count = 0
        while True:
            due = it.get_next(datetime)
            if due.timestamp() > now:
                break
            count += 1
            if len(missed) < MAX_MISSED_RECORDED:
                missed.append(due)
        if not count:
            return
        self.missed[s.name] = missed
        note = f"missed: no chute watch was running (last fire {last.isoformat()})"
        with conn.transaction():
            for due in missed:
                conn.execute("INSERT INTO chute.schedule_fires (pipeline, schedule, due_at, status, cron, note)"
                             " VALUES (%s, %s, %s, 'missed', %s, %s) ON CONFLICT DO NOTHING",
                             (self.pipeline, s.name, due, s.cron, note))
        log.warning("schedule %s (%s) missed %d fire(s) while no watch was running: %s%s", s.name, s.cron, count,
                    ", ".join(d.isoformat() for d in missed[:5]), " ..." if count > 5 else "")
        if s.missed == "run":
            emit(RunRequest(self.name, f"schedule {s.name}: catch-up for {count} missed fire(s)",
                            details={"schedule": s.name, "missed": count,
                                     **({"extract": s.extract} if s.extract else {})}))

    # -- the clock -------------------------------------------------------------------------
    def _loop(self, emit: Emit, start: float) -> None:
        base = datetime.fromtimestamp(start, timezone.utc)
        upcoming = {s.name: croniter(s.cron, base).get_next(datetime) for s in self.schedules}
        by_name = {s.name: s for s in self.schedules}
        while not self._stopping.is_set():
            name = min(upcoming, key=lambda n: upcoming[n])
            due = upcoming[name]
            delay = due.timestamp() - self.clock()
            if delay > 0:
                if self._stopping.wait(min(delay, 1.0)):  # re-read the clock at least every second
                    return
                continue
            s = by_name[name]
            upcoming[name] = croniter(s.cron, due).get_next(datetime)
            self._fire(s, due, emit)

    def _fire(self, s: Schedule, due: datetime, emit: Emit) -> None:
        if not self._take_fire(s, due):
            log.info("schedule %s due at %s: fired by another worker", s.name, due.isoformat())
            return

        def done(ok: bool) -> None:
            if not ok:
                self._note(s, due, "missed", "the run could not happen (service stopping or database down)")

        log.info("schedule %s (%s) due at %s", s.name, s.cron, due.isoformat())
        emit(RunRequest(self.name, f"schedule {s.name} ({s.cron}) due at {due.isoformat()}",
                        event_time=due.timestamp(), done=done,
                        details={"schedule": s.name, "due": due.isoformat(),
                                 **({"extract": s.extract} if s.extract else {})}))

    def _take_fire(self, s: Schedule, due: datetime) -> bool:
        """Record the fire; False when another worker already did (it runs it, not us)."""
        try:
            with connect(self.db_url) as conn:
                row = conn.execute(
                    "INSERT INTO chute.schedule_fires (pipeline, schedule, due_at, status, cron)"
                    " VALUES (%s, %s, %s, 'fired', %s) ON CONFLICT DO NOTHING RETURNING 1",
                    (self.pipeline, s.name, due, s.cron)).fetchone()
                return row is not None
        except Exception as exc:  # the database is away: fire anyway (the ledger keeps runs harmless)
            log.warning("could not record schedule %s fire at %s: %s", s.name, due.isoformat(), exc)
            return True

    def _note(self, s: Schedule, due: datetime, status: str, note: str | None) -> None:
        try:
            with connect(self.db_url) as conn:
                conn.execute(
                    "INSERT INTO chute.schedule_fires (pipeline, schedule, due_at, status, cron, note)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (pipeline, schedule, due_at)"
                    " DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, noted_at = now()",
                    (self.pipeline, s.name, due, status, s.cron, note))
        except Exception as exc:  # the database is away; the fire is still logged
            log.warning("could not record schedule %s fire at %s as %s: %s", s.name, due.isoformat(), status, exc)

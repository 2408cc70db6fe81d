"""`chute watch`: the long-running service. Triggers emit run requests; the service coalesces
them, runs the pipeline with retries, records what could not be done, and serves metrics.

    triggers (folder, schedule, s3, ...) --emit--> queue --debounce--> one Runner.run()
                                                             |  transient error: backoff + retry
                                                             |  database away: wait for it, then run
                                                             |  still failing: dead event
                                                             v
                                            request.done(ok), metrics, log line

Start-up runs once over the whole zone (files that landed while nothing watched), and so
does every [watch] rescan seconds (events lost, claims of dead workers that lapsed).

Stopping (SIGTERM/SIGINT -> stop()): no new run starts; the run in progress finishes the
files it has claimed and leaves the rest, unclaimed, for the next start. Nothing is lost:
a file is either committed with its ledger row or not touched.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from pathlib import Path

from chute.ledger import schema
from chute.ledger import deadletters
from chute.run.after_run import after_failed_start
from chute.db.kept import KeptConnections
from chute.db.postgres import connect
from chute.errors import ChuteError, DatabaseUnavailable
from chute.watch.metrics import Metrics
from chute.config.project import Project, Schedule
from chute.retry import RetryPolicy, is_transient, retrying
from chute.run.runner import Runner
from chute.sources.selection import Selection
from chute.ledger.summary import RunSummary
from chute.watch.trigger import RunRequest, Trigger
from chute.watch.folder import FolderTrigger
from chute.watch.schedule import ScheduleTrigger

log = logging.getLogger("chute.watch")

_DEBOUNCE_CAP = 10  # a steady stream of events still starts a run after 10 x debounce


def default_triggers(project: Project, db_url: str) -> list[Trigger]:
    """The folder trigger for a local landing zone (the queue's for a chained stage), plus one for the
    schedules if any."""
    found: list[Trigger] = []
    landing = project.landing
    if project.follow is not None:  # a chained stage: its upstream's messages drive it (it writes its own files)
        from chute.watch.queue_trigger import QueueTrigger

        found.append(QueueTrigger(db_url, project.name, project.follow.poll))
    elif "://" not in landing.path:  # an s3:// landing zone brings its own trigger
        found.append(FolderTrigger(project.landing_path, landing.patterns, landing.recursive, project.watch.settle,
                                   marker=landing.marker if landing.trigger == "marker" else None))
    else:  # S3 events through SQS (chute s3 setup), and a listing now and then for missed ones
        from chute.watch.s3 import s3_triggers

        found.extend(s3_triggers(project, db_url))
    schedules = [*project.schedules, *extract_schedules(project)]
    if schedules:
        found.append(ScheduleTrigger(schedules, db_url, project.name))
    return found


def extract_schedules(project: Project) -> list[Schedule]:
    """`[extract.NAME] schedule = CRON`: a schedule that runs the extraction, then a run."""
    return [Schedule(name=f"extract.{name}", cron=spec.schedule, extract=[name])
            for name, spec in project.extract.items() if spec.schedule]


class WatchService:
    def __init__(self, project: Project, db_url: str, *, triggers: list[Trigger] | None = None,
                 metrics_port: int | None = None):
        self.project = project
        self.db_url = db_url
        self.triggers = default_triggers(project, db_url) if triggers is None else triggers
        self.folder = next((t for t in self.triggers if isinstance(t, FolderTrigger)), None)
        self.metrics = Metrics(project.name)
        self.metrics.track_queue(db_url, project.name)  # chute_queue_messages (chained stages)
        self.metrics_port = metrics_port
        self.policy = RetryPolicy.of(project.watch)
        self.stopping = threading.Event()
        self.queue: queue.Queue[RunRequest | None] = queue.Queue()
        self.ready = threading.Event()  # set once the triggers are started (tests wait on it)
        self.port: int | None = None
        self.runs: list[RunSummary] = []
        self.kept = KeptConnections()  # connections and schema checks kept between runs

    # -- control ---------------------------------------------------------------------------
    def emit(self, request: RunRequest) -> None:
        self.queue.put(request)

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put(None)

    # -- the service -----------------------------------------------------------------------
    def serve(self) -> None:
        """Run until stop(). Blocks."""
        started: list[Trigger] = []
        try:
            if self.metrics_port is not None:
                self.port = self.metrics.serve(self.metrics_port)
                log.info("metrics on http://127.0.0.1:%d/metrics", self.port)
            self._flush_spool()
            for trigger in self.triggers:
                retrying(lambda: trigger.start(self.emit), self.policy, what=f"starting {trigger.name}",
                         stop=self.stopping)
                started.append(trigger)
                log.info("watching: %s", trigger.describe())
            self.emit(RunRequest("startup", "files that landed while no watch was running"))
            self.ready.set()
            while not self.stopping.is_set():
                batch = self._next_batch()
                if batch:
                    self._run(batch)
        finally:
            for trigger in reversed(started):
                trigger.stop()
            while True:  # requests no run covered: their triggers keep their events
                try:
                    request = self.queue.get_nowait()
                except queue.Empty:
                    break
                if request is not None:
                    request.done(False)
            self.metrics.close()
            self.kept.close()
            log.info("stopped")

    def _next_batch(self) -> list[RunRequest]:
        try:
            first = self.queue.get(timeout=self.project.watch.rescan)
        except queue.Empty:
            return [RunRequest("rescan", "periodic look at the whole zone")]
        if first is None:
            return []
        if self.project.watch.max_batch_delay is not None:
            return self._micro_batch(first)
        batch = [first]
        # Whatever queued while the last run went joins at once (a burst costs one run, not one
        # per file); then wait for `debounce` seconds of quiet, if configured.
        while not self._full(batch):
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch
            batch.append(item)
        quiet = self.project.watch.debounce
        cap = time.monotonic() + quiet * _DEBOUNCE_CAP
        while quiet > 0 and (left := min(quiet, cap - time.monotonic())) > 0 and not self._full(batch):
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:  # stopping: run what we have (its files are complete), then end
                break
            batch.append(item)
        return batch

    def _micro_batch(self, first: RunRequest) -> list[RunRequest]:
        """Requests until the first one has waited max_batch_delay seconds since its event, or
        max_batch_files files are in hand. A steady stream thus makes one run (one transaction
        per unit of input) per batch instead of one per file, and a quiet one still loads
        within the delay. Requests queued while the last run went are taken at once."""
        batch = [first]
        deadline = time.monotonic() - max(0.0, time.time() - first.event_time) + self.project.watch.max_batch_delay
        while not self._full(batch):
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic())) \
                    if deadline > time.monotonic() else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stopping: run what we have (its files are complete), then end
                break
            batch.append(item)
        return batch

    def _full(self, batch: list[RunRequest]) -> bool:
        """max_batch_files reached (a request for the whole zone fills the batch at once)."""
        limit = self.project.watch.max_batch_files
        if limit is None:
            return False
        if any(not r.names for r in batch):
            return True
        return len({n for r in batch for n in r.names}) >= limit

    def _run(self, batch: list[RunRequest]) -> None:
        whole = any(not r.names for r in batch)
        names = None if whole else sorted({n for r in batch for n in r.names})
        prefixes = {r.prefix for r in batch}
        prefix = prefixes.pop() if len(prefixes) == 1 else None
        triggers = sorted({r.trigger for r in batch})
        trigger = "+".join(triggers)
        reasons = list(dict.fromkeys(r.reason for r in batch))
        reason = "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
        # A whole-zone look leaves alone files that may still be written, unless a batch marker
        # vouches for them (its files are complete by convention).
        unsure = whole and self.folder is not None and any(r.trigger != "marker" for r in batch)
        selection = Selection(only=names, prefix=prefix, skip=self.folder.incomplete() if unsure else frozenset(),
                              min_age=self.project.watch.settle if unsure else 0.0,
                              confirmed=frozenset(n for r in batch for n in r.names))
        event_time = min(r.event_time for r in batch)
        details = {"trigger": {"reason": reason, "requests": len(batch),
                               **{k: v for r in batch for k, v in r.details.items()}}}

        self._extract(batch)

        def attempt() -> RunSummary:
            return Runner(self.project, self.db_url, trigger=trigger, selection=selection,
                          stop=self.stopping, details=details, kept=self.kept).run()

        log.info("run (%s): %s", trigger, reason)
        try:
            try:
                summary = retrying(attempt, self.policy, what=f"run ({trigger})", stop=self.stopping,
                                   on_retry=lambda *_: self.metrics.retries.labels(self.project.name).inc())
            except DatabaseUnavailable as exc:  # not this run's fault: every run needs the database
                summary = self._when_back(attempt, trigger, exc)
        except Exception as exc:
            self._could_not_run(batch, trigger, reason, exc)
            return
        self._flush_spool()
        self.runs.append(summary)
        self.metrics.record_run(summary, trigger, time.time() - event_time)
        loaded, failed, skipped = summary.count("loaded"), summary.count("failed"), summary.count("skipped")
        log.info("run %s %s in %.2fs: %d loaded, %d failed, %d skipped, %d unchanged%s%s; %d rows%s",
                 summary.run_id, summary.status, summary.seconds, loaded, failed, skipped, summary.unchanged,
                 f", {summary.claimed_elsewhere} with other workers" if summary.claimed_elsewhere else "",
                 f", {summary.dead_letters} new dead letter(s)" if summary.dead_letters else "", summary.rows_loaded,
                 f", {summary.rows_rejected} rejected into quarantine ({summary.count('loaded_with_rejects')} "
                 "file(s) loaded with rejects)" if summary.rows_rejected else "")
        for f in summary.files:
            if f.status == "failed":
                log.warning("file %s failed: %s", f.name, f.error)
        if summary.error:
            log.error("run %s: %s", summary.run_id, summary.error)
        ok = not summary.error and not summary.interrupted
        if summary.error and not self.stopping.is_set():  # a run-level failure: the event is a dead letter
            self._dead_event(batch, trigger, summary.error)
        for r in batch:
            r.done(ok)

    def _when_back(self, attempt, trigger: str, exc: DatabaseUnavailable) -> RunSummary:
        """The database is away (down, restarting, unreachable) beyond the retries: try the run
        again every [watch] retry_max seconds until it is back, then resume. Raises the last
        error when asked to stop meanwhile (the files wait for the next start)."""
        every = self.policy.maximum
        log.error("%s; waiting for it: trying again every %.0fs", exc, every)
        self.metrics.record_error(trigger)
        away = time.monotonic()
        while not self.stopping.wait(every):
            self.metrics.retries.labels(self.project.name).inc()
            try:
                summary = attempt()
            except DatabaseUnavailable as again:
                log.debug("still away: %s", again)
                exc = again
                continue
            log.info("the database is back after %.0fs: resumed", time.monotonic() - away)
            return summary
        raise exc

    def _extract(self, batch: list[RunRequest]) -> None:
        """Extractions a scheduled request names run first, so the run loads what they wrote.
        One that fails is logged (and kept in chute.watermarks); the run still loads the rest."""
        names = list(dict.fromkeys(n for r in batch for n in r.details.get("extract", ())))
        if not names:
            return
        from chute.extract import run_extract

        for name in names:
            try:
                report = run_extract(self.project, name, db_url=self.db_url)
            except ChuteError as exc:
                log.error("extract %s: %s", name, exc)
                continue
            if report.error:
                log.error("extract %s failed: %s", name, report.error)
            else:
                log.info("extract %s: %d rows in %d file(s) in %.2fs", name, report.rows, len(report.files),
                         report.seconds)

    def _could_not_run(self, batch: list[RunRequest], trigger: str, reason: str, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, ChuteError) else f"{type(exc).__name__}: {exc}"
        if self.stopping.is_set() and is_transient(exc):
            log.warning("stopping before the run (%s) could happen; its files wait for the next start", trigger)
        else:
            log.error("run (%s) could not happen after its retries: %s", trigger, message)
            self.metrics.record_error(trigger)
            self._dead_event(batch, trigger, message)
            after_failed_start(self.project, message, trigger)
        for r in batch:
            r.done(False)

    def _dead_event(self, batch: list[RunRequest], trigger: str, error: str) -> None:
        details = {"reasons": [r.reason for r in batch][:20],
                   "names": sorted({n for r in batch for n in r.names})[:100],
                   "first_event": min(r.event_time for r in batch)}
        deadletters.spool_event(self.state_dir, self.project.name, uuid.uuid4().hex, trigger, error, details)
        self._flush_spool()

    @property
    def state_dir(self) -> Path:
        return self.project.state_dir

    def _flush_spool(self) -> None:
        """Move dead events spooled while the database was away into chute.dead_letters."""
        if not (self.state_dir / deadletters.SPOOL).is_file():
            return
        try:
            with connect(self.db_url) as conn:
                schema.ensure_schema(conn)
                if n := deadletters.flush_spool(conn, self.state_dir):
                    log.info("recorded %d dead event(s) in chute.dead_letters", n)
        except Exception as exc:  # still away: they stay in the spool
            log.debug("dead events stay spooled: %s", exc)

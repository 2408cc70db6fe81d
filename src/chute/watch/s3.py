"""Triggers for an S3 landing zone: S3 event notifications through SQS, and a polling fallback.

    SqsTrigger   long-polls the queue `chute s3 setup` made. Each message names objects; it
                 becomes a RunRequest for those names (file mode) or for the marker's folder
                 (marker mode, `[landing] trigger = "marker"`: only the marker object starts a
                 run, which takes every file of that batch). The message is deleted only when
                 the run that covered it settled it (`done(True)`); otherwise it comes back
                 after a short delay, and after [s3] max_receive_count receipts SQS moves it to
                 the dead-letter queue (`chute s3 redrive` puts it back).
    PollTrigger  every [s3] poll_interval seconds lists the zone and asks for a run only for
                 names the ledger has not seen with that size and version, so events that
                 were lost or late still get loaded, without re-reading anything settled.

Duplicate or re-delivered events are harmless: the ledger loads each content exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from chute.sources.s3_events import S3Object, parse_event, wanted
from chute.sources.s3 import parse_s3_url, s3_client
from chute.sources.selection import Selection
from chute.watch.trigger import Emit, PollingTrigger, RunRequest, Trigger

log = logging.getLogger("chute.triggers.s3")


class EventRouter:
    """Turns the objects of one message into the run requests they call for."""

    def __init__(self, project):
        self.project = project
        self.bucket, self.prefix = parse_s3_url(project.landing.path)
        landing = project.landing
        self.marker = landing.marker if landing.trigger == "marker" else None

    def wanted(self, name: str) -> bool:
        return wanted(name, self.project.landing)

    def requests(self, objects: list[S3Object]) -> list[tuple[str, dict[str, Any]]]:
        """[(kind, fields)] where kind is 'names' or 'batch'. Objects not ours are dropped."""
        names, batches = [], []
        for bucket, key, _etag in objects:
            if bucket != self.bucket or not key.startswith(self.prefix):
                continue
            name = key[len(self.prefix):]
            if self.marker:
                if name.rsplit("/", 1)[-1] == self.marker:
                    batches.append(name.rsplit("/", 1)[0] + "/" if "/" in name else "")
            elif self.wanted(name):
                names.append(name)
        out: list[tuple[str, dict[str, Any]]] = [("batch", {"prefix": p}) for p in dict.fromkeys(batches)]
        if names:
            out.append(("names", {"names": tuple(dict.fromkeys(names))}))
        return out


class SqsTrigger(Trigger):
    name = "s3"

    def __init__(self, project, *, wait_seconds: int | None = None):
        self.project = project
        self.router = EventRouter(project)
        self.wait_seconds = project.s3.wait_seconds if wait_seconds is None else wait_seconds
        self.sqs = s3_client("sqs")
        self.queue_url = ""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return f"S3 events for {self.project.landing.path} from SQS {self.project.s3.queue_name(self.project.name)}"

    def start(self, emit: Emit) -> None:
        from chute.watch.s3_queue import queue_urls

        self.queue_url, _ = queue_urls(self.project, self.sqs)
        self._thread = threading.Thread(target=self._loop, args=(emit,), name="chute-sqs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait_seconds + 5)

    def _loop(self, emit: Emit) -> None:
        while not self._stopping.is_set():
            try:
                messages = self.receive(self.wait_seconds)
            except Exception as exc:  # network, throttling beyond botocore's retries: wait and go on
                log.warning("receiving S3 events failed: %s", exc)
                self._stopping.wait(5)
                continue
            for message in messages:
                for request in self.requests_of(message):
                    with self._lock:
                        if self._stopping.is_set():  # never emit after stop(); the event comes back
                            self.release(message["ReceiptHandle"])
                            break
                        emit(request)

    def receive(self, wait: int = 0, limit: int = 10) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=limit, WaitTimeSeconds=wait,
                                        AttributeNames=["ApproximateReceiveCount", "SentTimestamp"]
                                        ).get("Messages", [])

    def requests_of(self, message: dict) -> Iterator[RunRequest]:
        """The run requests of one message; a message that calls for none is deleted at once.
        With several requests, the message is deleted when all of them were settled."""
        routed = self.router.requests(parse_event(message["Body"]))
        if not routed:
            self.delete(message["ReceiptHandle"])  # a test event, or objects this pipeline does not take
            return
        pending = {"left": len(routed), "ok": True}
        lock = threading.Lock()
        handle = message["ReceiptHandle"]
        sent = int(message.get("Attributes", {}).get("SentTimestamp", 0)) / 1000 or None

        def done(ok: bool) -> None:
            with lock:
                pending["left"] -= 1
                pending["ok"] = pending["ok"] and ok
                last, all_ok = pending["left"] == 0, pending["ok"]
            if last:
                self.delete(handle) if all_ok else self.release(handle, self.project.s3.retry_after)

        for kind, fields in routed:
            extra = {"event_time": sent} if sent else {}
            if kind == "batch":
                folder = fields["prefix"] or "(top level)"
                yield RunRequest("marker", f"batch marker landed in {folder}", prefix=fields["prefix"] or None,
                                 done=done, details={"sqs_message": message["MessageId"]}, **extra)
            else:
                names = fields["names"]
                yield RunRequest("s3", f"{len(names)} object(s) landed: {', '.join(names[:3])}"
                                 + (" ..." if len(names) > 3 else ""), names=names, done=done,
                                 details={"sqs_message": message["MessageId"]}, **extra)

    def delete(self, handle: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)
        except Exception as exc:  # it will be received again; the ledger makes that harmless
            log.warning("could not delete an SQS message: %s", exc)

    def release(self, handle: str, after: int = 0) -> None:
        """Let the message be received again after `after` seconds (counts toward the redrive)."""
        try:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=after)
        except Exception as exc:
            log.warning("could not release an SQS message: %s", exc)


class PollTrigger(PollingTrigger):
    """The fallback: list the zone now and then; ask for a run only for what the ledger has not seen."""

    name = "s3-poll"

    def __init__(self, project, db_url: str, interval: float | None = None):
        super().__init__()
        self.project = project
        self.db_url = db_url
        self.interval = interval or project.s3.poll_interval

    def describe(self) -> str:
        return f"listing {self.project.landing.path} every {self.interval:g} s for files no event announced"

    def poll(self, emit: Emit) -> None:
        try:
            unseen = self.unseen()
        except Exception as exc:
            log.warning("polling %s failed: %s", self.project.landing.path, exc)
            return
        if unseen and not self.stopping:
            emit(RunRequest("s3-poll", f"{len(unseen)} object(s) not yet in the ledger", names=tuple(unseen)))

    def unseen(self) -> list[str]:
        """Names in the zone (complete batches only, in marker mode) the ledger has no settled
        version of with this size and version."""
        from chute.ledger import files as ledger
        from chute.db.postgres import connect
        from chute.sources import open_zone

        entries = open_zone(self.project).list()
        conn = connect(self.db_url)
        try:
            known = ledger.known_files(conn, self.project.name) if ledger.schema_exists(conn) else {}
        finally:
            conn.close()
        return [e.name for e in entries
                if not any(k.size == e.size and k.mtime_ns == e.mtime_ns for k in known.get(e.name, ()))]


def s3_triggers(project, db_url: str) -> list[Trigger]:
    """What `chute watch` runs for an s3:// landing zone: the SQS events and the polling fallback."""
    return [SqsTrigger(project), PollTrigger(project, db_url)]


def drain(project, db_url: str, *, wait: int = 0, max_messages: int = 1000) -> dict[str, Any]:
    """Take the S3 events waiting in the queue, run once per batch (and once for all plain
    objects), delete the messages those runs settled, and return. For cron, CI and tests;
    `chute watch` does the same continuously."""
    from chute.errors import ChuteError
    from chute.run.runner import Runner
    from chute.watch.s3_queue import queue_urls

    trigger = SqsTrigger(project, wait_seconds=wait)
    trigger.queue_url, _ = queue_urls(project, trigger.sqs)
    requests: list[RunRequest] = []
    received = 0
    while received < max_messages:
        messages = trigger.receive(wait if not received else 0, min(10, max_messages - received))
        if not messages:
            break
        received += len(messages)
        for message in messages:
            requests.extend(trigger.requests_of(message))

    groups: dict[str | None, list[RunRequest]] = {}
    for r in requests:  # plain objects share one run (key None); each batch folder gets its own
        groups.setdefault(None if r.names else (r.prefix or ""), []).append(r)
    runs = []
    for prefix, batch in groups.items():
        names = sorted({n for r in batch for n in r.names}) if prefix is None else None
        kind = "s3" if prefix is None else "marker"
        details = {"trigger": {"reason": "; ".join(r.reason for r in batch[:5]), "requests": len(batch)}}
        try:
            summary = Runner(project, db_url, trigger=kind, selection=Selection(only=names, prefix=prefix or None),
                             details=details).run()
            ok, error = not summary.error and not summary.interrupted, summary.error
            runs.append({"run_id": summary.run_id, "trigger": kind, "prefix": prefix, "status": summary.status,
                         "files_loaded": summary.count("loaded"), "files_failed": summary.count("failed"),
                         "rows_loaded": summary.rows_loaded, "error": error})
        except ChuteError as exc:  # the messages stay: they come back, and after max_receive_count go to the DLQ
            ok = False
            runs.append({"run_id": None, "trigger": kind, "prefix": prefix, "status": "not run", "error": str(exc)})
        for r in batch:
            r.done(ok)
    return {"messages": received, "requests": len(requests), "runs": runs}

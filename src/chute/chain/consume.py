"""A following stage's run: claim messages -> do their work (extract for their keys) -> one
load run whose transactions acknowledge them -> failed messages back off or die.

    chute run -p sales      (a project with [follow]) does exactly this, and so does each
                            run of `chute watch -p sales`, woken by chain.trigger.QueueTrigger

Exactly once across the handoff: the upstream wrote each message in the transaction that
loaded its rows; here a message is acknowledged in the transaction that loads the rows its
work produced (or on its own when that work found nothing new to load). A crash in between
leaves the message leased; its lease lapses and it is claimed again; the extraction writes
the same bytes, which the ledger skips. Failed work never touches the upstream's rows: the
message is retried with backoff, then becomes a dead letter of this stage (`chute dlq list`),
and `chute dlq retry` replays it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from chute.ledger import schema
from chute.db.postgres import connect
from chute.errors import ChuteError, ConfigError, RunInProgress
from chute.ledger.heartbeat import Heartbeat
from chute.ledger import files as ledger
from chute.ledger import queue, workers
from chute.chain.publish import Acker
from chute.sources.selection import Selection

if TYPE_CHECKING:
    from chute.ledger.summary import RunSummary

log = logging.getLogger("chute.chain")


def message_extracts(project) -> list[str]:
    follow = project.follow
    names = follow.extract or sorted(n for n, s in project.extract.items() if getattr(s, "for_each", None) == "message")
    for n in names:
        spec = project.extract.get(n)
        if spec is None:
            raise ConfigError(f"[follow] extract names {n!r}, which is not an [extract.{n}] of chute.toml")
        if getattr(spec, "for_each", None) != "message":
            raise ConfigError(f"[follow] extract names {n!r}, which needs for_each = \"message\" to take a message's keys")
    if follow.on == "rows" and not names:
        raise ConfigError("[follow] on = 'rows': add an [extract.NAME] with for_each = \"message\" "
                          "(it fetches what each key of the upstream stands for)")
    return names


class Stage(Protocol):
    """What consume needs of the run it stands in for (run/runner.py: Runner)."""

    project: Any
    db_url: str
    pipeline: str
    stop: threading.Event
    details: dict

    def following(self, *, only: list[str] | None, details: dict, commit_hooks: list) -> "RunSummary":
        """Load the stage's files (`only` these names; None: all new ones), with these hooks."""


def consume(outer: Stage) -> "RunSummary":
    from chute.extract import run_extract
    from chute.ledger.summary import RunSummary

    project, db_url, stage = outer.project, outer.db_url, outer.pipeline
    follow = project.follow
    extracts = message_extracts(project)
    max_attempts = follow.max_attempts or project.watch.max_attempts
    conn = connect(db_url)
    heartbeat = None
    try:
        schema.ensure_schema(conn)
        backfilled = queue.subscribe(conn, stage, follow)
        revived = queue.requeue_revived(conn, stage)
        me = queue.consumer_id()
        lease = project.watch.lease
        messages = queue.claim(conn, stage, follow.messages_per_run, lease, by=me)
        # Our leases are renewed while the work runs, however long an extraction takes; a
        # consumer that dies stops renewing, and its messages are claimable after one lease.
        ids = [m["message_id"] for m in messages]
        if messages:
            heartbeat = Heartbeat(db_url, lease / 3, lambda c: queue.renew(c, ids, me, lease), f"{stage}:{me}").start()
        files_of: dict[int, list[str]] = {}
        failed: dict[int, str] = {}
        released: list[int] = []
        busy = False  # a peer consumer of this stage held an extraction for longer than we wait
        for m in messages:
            mid = m["message_id"]
            if outer.stop.is_set() or busy:
                released.append(mid)
                continue
            try:
                if follow.on == "files":
                    files_of[mid] = list(m["payload"].get("files", []))
                else:
                    names: list[str] = []
                    for name in extracts:
                        # A peer's extraction is no fault of this message: wait our turn (our
                        # leases are renewed meanwhile), then give the message back untried.
                        report = run_extract(project, name, keys=m["payload"].get("keys", []), db_url=db_url,
                                             wait=lease, stop=outer.stop)
                        names += report.files
                        if report.error:
                            raise ChuteError(f"extract {name}: {report.error}")
                    files_of[mid] = names
            except RunInProgress as exc:
                busy = True
                released.append(mid)
                files_of.pop(mid, None)
                log.info("message %d (%s) given back, not tried: %s", mid, queue.describe(m["payload"]), exc)
            except ChuteError as exc:
                failed[mid] = str(exc)
                log.warning("message %d (%s) failed: %s", mid, queue.describe(m["payload"]), exc)
        queue.release(conn, released, by=me)
        working = {mid: names for mid, names in files_of.items() if mid not in failed}
        acker = Acker(stage, {mid: set(n) for mid, n in working.items()})
        details = {**outer.details, "chain": {"claimed": len(messages), "backfilled": backfilled, "revived": revived}}
        if follow.on == "files" and not any(files_of.values()):
            summary = RunSummary(None, stage, "succeeded")
        else:
            only = sorted({n for names in files_of.values() for n in names}) if follow.on == "files" else None
            summary = outer.following(selection=Selection(only=only), details=details, commit_hooks=[acker])
        # Work that had nothing new to load (no files, or files already loaded): acknowledged here.
        remaining = {mid: acker.remaining.get(mid, set()) for mid in working if mid not in acker.acked}
        settled = _settled(conn, stage, remaining)
        unsettled = {n for left in remaining.values() for n in left} - settled
        if unsettled and _wait_for_peers(conn, stage, unsettled, outer.stop, limit=PEER_WAIT_LEASES * lease):
            settled = _settled(conn, stage, remaining)
        for mid in working:
            if mid in acker.acked:
                continue
            left = acker.remaining.get(mid, set())
            if not left or left <= settled:
                queue.ack(conn, stage, mid)
                acker.acked.add(mid)
            else:
                failed[mid] = (_file_errors(conn, stage, left - settled) or summary.error
                               or _unseen(project, stage, left - settled))
        dead = 0
        for m in messages:
            if m["message_id"] in failed:
                dead += queue.fail(conn, stage, m, failed[m["message_id"]], max_attempts=max_attempts,
                                   initial=project.watch.retry_initial, maximum=project.watch.retry_max)
        summary.chain = {"claimed": len(messages), "acknowledged": len(acker.acked), "failed": len(failed),
                         "dead": dead, "released": len(released), "backfilled": backfilled, "revived": revived}
        summary.dead_letters += dead
        if failed and summary.status == "succeeded":
            summary.status = "failed"
            summary.error = summary.error or "; ".join(f"message {mid}: {e}" for mid, e in list(failed.items())[:3])
        return summary
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        conn.close()


# How long, in leases, a consumer waits for a peer's run that claimed its files (a live peer
# renews its claims; a dead one's lapse within a lease, which ends the wait sooner).
PEER_WAIT_LEASES = 30


def _wait_for_peers(conn, stage: str, names: set[str], stop: threading.Event, limit: float) -> bool:
    """Whether peers held claims on any of these files: then wait until they hold none (or
    `limit` seconds pass, or we are stopped). Every run of a stage loads all of its new files,
    so a peer consumer that listed the landing zone first may be loading the files this
    consumer extracted; its transaction commits them, then it lets the claims go."""
    listed = sorted(names)
    held = workers.live_claims(conn, stage, listed)
    deadline = time.monotonic() + limit
    waited = bool(held)
    while held and time.monotonic() < deadline and not stop.wait(0.1):
        held = workers.live_claims(conn, stage, listed)
    return waited


def _settled(conn, stage: str, remaining: dict[int, set[str]]) -> set[str]:
    """Of these names, those whose latest version is loaded or skipped (its content already loaded)."""
    names = sorted({n for left in remaining.values() for n in left})
    if not names:
        return set()
    latest = ledger.latest_versions(conn, stage, names)
    return {n for n, (status, _) in latest.items() if status in (*ledger.LOADED_STATES, "skipped")}


def _file_errors(conn, stage: str, names: set[str]) -> str | None:
    failed = ledger.latest_versions(conn, stage, names, status="failed")
    return "; ".join(f"{n}: {e}" for n, (_, e) in list(failed.items())[:3]) or None


def _unseen(project, stage: str, names: set[str]) -> str:
    """Why named files neither loaded nor failed: the run never saw them (a file named by the
    upstream that this stage's zone lacks, or that its [landing] patterns leave out)."""
    shown = ", ".join(sorted(names)[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{shown}: not in the landing zone of stage {stage} ({project.landing.path}) or not matching its "
            f"[landing] patterns {', '.join(project.landing.patterns)}")

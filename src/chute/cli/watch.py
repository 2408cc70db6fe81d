"""`chute watch` (the service) and `chute dlq` (dead letters). Registered at the end of cli.py."""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from chute.errors import ConfigError

from chute.cli._common import data_table, emit_json, db_option, json_option, out, project_option  # noqa: E402


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                           + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                           "logger": record.name, "message": record.getMessage()})


def _setup_logging(as_json: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("chute")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


@click.command()
@project_option
@db_option
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0 picks a free port). "
                   "Default: [watch] metrics_port, else off.")
@click.option("--verbose", "-v", is_flag=True, help="Also log every file event.")
@click.option("--json", "as_json", is_flag=True, help="Log JSON lines on stderr instead of text.")
def watch(project_dir: Path, db_url: str | None, metrics_port: int | None, verbose: bool, as_json: bool) -> None:
    """Run continuously: load files as they land, on schedules, until SIGTERM or Ctrl-C.

    \b
    A file is taken when it is complete (closed after writing, moved in, or its size stayed
    unchanged for [watch] settle seconds); hidden and temporary names are ignored. Events
    close together start one run. Transient errors (database unreachable) are retried with
    backoff; what still fails becomes a dead letter (chute dlq list). Several watch processes
    may share one landing zone and database: each file is loaded by exactly one of them.

    \b
    The first SIGTERM/SIGINT finishes the files in hand and stops; a second one stops at once
    (the open transaction rolls back; the files are taken again at the next start).
    """
    from chute.config.project import load_project
    from chute.db.resolve import resolve_database
    from chute.watch.service import WatchService

    _setup_logging(as_json, verbose)
    project = load_project(project_dir)
    url = resolve_database(project, db_url, project_dir)
    port = metrics_port if metrics_port is not None else project.watch.metrics_port
    service = WatchService(project, url, metrics_port=port)
    log = logging.getLogger("chute.watch")

    def on_signal(signum: int, frame) -> None:
        if service.stopping.is_set():
            log.warning("%s again: stopping now", signal.Signals(signum).name)
            os._exit(130)
        log.info("%s: finishing the files in hand, then stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: where is every thread?
    log.info("chute watch: pipeline %s, pid %d", project.name, os.getpid())
    service.serve()


# -- dlq ----------------------------------------------------------------------------------------
@click.group()
def dlq() -> None:
    """Dead letters: files and events chute gave up on after their retries.

    \b
    A file is a dead letter when it failed with a terminal error (bad data) or failed
    [watch] max_attempts times; an event when its run could not happen.
      chute dlq list              what is dead (and re-queued)
      chute dlq retry ID | --all  take it again at the next run or watch
      chute dlq purge ID | --all  forget it (the ledger keeps the file's history)
    """


def _open(project_dir: Path, db_url: str | None):
    from chute.db.postgres import connect
    from chute.config.project import load_project
    from chute.db.resolve import resolve_database
    from chute.ledger import schema

    project = load_project(project_dir)
    conn = connect(resolve_database(project, db_url, project_dir))
    schema.ensure_schema(conn)
    return project, conn


@dlq.command("list")
@project_option
@db_option
@click.option("--all", "everything", is_flag=True, help="Also show resolved dead letters.")
@json_option
def dlq_list(project_dir: Path, db_url: str | None, everything: bool, as_json: bool) -> None:
    """List the dead letters of the project's pipeline."""
    from chute.ledger import deadletters

    project, conn = _open(project_dir, db_url)
    with conn:
        rows = deadletters.listing(conn, project.name, include_resolved=everything)
    if as_json:
        emit_json({"pipeline": project.name, "dead_letters": rows})
        return
    if not rows:
        out.print(f"[bold]{project.name}[/]: no dead letters")
        return
    table = data_table("id", "kind", "name", "status", "attempts", "since", "error")
    for r in rows:
        table.add_row(str(r["id"]), r["kind"], r["name"], r["status"], str(r["attempts"]),
                      f"{r['created_at']:%m-%d %H:%M}", (r["error"] or "")[:120])
    out.print(table)


def _ids(ids: tuple[int, ...], everything: bool, verb: str) -> list[int] | None:
    if bool(ids) == everything:
        raise ConfigError(f"chute dlq {verb}: give dead-letter ID(s) or --all (not both)")
    return None if everything else list(ids)


def _refuse_unknown(conn, pipeline: str, wanted: list[int] | None) -> None:
    """Dead letter ids the command was given that this pipeline does not have: refused, nothing done."""
    from chute.ledger import deadletters

    if wanted and (unknown := sorted(set(wanted) - deadletters.existing_ids(conn, pipeline, wanted))):
        raise ConfigError(f"no dead letter with id {', '.join(map(str, unknown))} in {pipeline}")


@dlq.command("retry")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Re-queue every dead letter.")
@project_option
@db_option
@json_option
def dlq_retry(ids: tuple[int, ...], everything: bool, project_dir: Path, db_url: str | None, as_json: bool) -> None:
    """Re-queue dead letters: the next `chute run` or watch takes them again (exactly once)."""
    from chute.ledger import deadletters

    wanted = _ids(ids, everything, "retry")
    project, conn = _open(project_dir, db_url)
    with conn:
        _refuse_unknown(conn, project.name, wanted)
        done = deadletters.requeue(conn, project.name, wanted)
    if as_json:
        emit_json({"pipeline": project.name, "requeued": done})
    else:
        out.print(f"re-queued {len(done)} dead letter(s)" + (f": {', '.join(map(str, done))}" if done else "")
                  + "; the next run takes them")


@dlq.command("purge")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Delete every dead letter.")
@project_option
@db_option
@json_option
def dlq_purge(ids: tuple[int, ...], everything: bool, project_dir: Path, db_url: str | None, as_json: bool) -> None:
    """Delete dead letters (the files' history stays in the ledger; they are not retried, and a purged
    file no longer counts as failing: chute forget)."""
    from chute.ledger import deadletters

    wanted = _ids(ids, everything, "purge")
    project, conn = _open(project_dir, db_url)
    with conn:
        _refuse_unknown(conn, project.name, wanted)
        done = deadletters.purge(conn, project.name, wanted)
    if as_json:
        emit_json({"pipeline": project.name, "purged": done})
    else:
        out.print(f"purged {len(done)} dead letter(s)")

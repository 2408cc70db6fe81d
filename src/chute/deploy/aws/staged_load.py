"""The load step on AWS: the staged table datasets of a batch's files -> PostgreSQL, with
the same loader (one transaction for rows + ledger rows + run counters) and the same
ledger rules as `chute run`:

- a file whose name and content are already loaded is left alone (a re-delivered event);
- content already loaded under another name is recorded `skipped`;
- a file that failed to read or transform is recorded `failed`, with its error;
- the rest load in one transaction; if it fails, file by file, so one bad file cannot
  sink the others;
- the stages that follow this pipeline (chute.chain) get their messages in that same
  transaction, through the same commit hooks as `chute run` (commit_hooks.py); the summary's
  `chain.published` counts them, and the notify step then wakes the followers up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from chute.ledger import schema
from chute.ledger import files as ledger
from chute.chain.publish import publishers
from chute.load.commit_hooks import CommitHooks, undone_on_failure
from chute.load.unit import LoadUnit, Target
from chute.db.postgres import connect, connect_loader
from chute.errors import DatabaseError, FileError, RunInProgress
from chute.config.project import Project
from chute.quality.contracts import contracts_of
from chute.quality.gate import Gate
from chute.ledger.summary import FileOutcome, RunSummary
from chute.run.plan import build_plan
from chute.db.target import targets_of
from chute.sources.base import FileEntry


@dataclass
class StagedFile:
    entry: FileEntry
    meta: dict[str, Any]  # sha256, rows_read; or error
    frame: Callable[[str], pl.DataFrame]  # dataset name -> its staged rows for this file


def load_staged(project: Project, db_url: str, files: list[StagedFile], *, trigger: str = "s3",
                excluded: int = 0) -> RunSummary:
    started = time.perf_counter()
    pipeline = project.name
    targets = targets_of(project)
    conn = connect(db_url)
    try:
        schema.ensure_schema(conn)
        schema.ensure_targets(conn, targets)
        gate_of = _gates(project)
        hooks = CommitHooks(publishers(conn, pipeline))
        if not ledger.try_lock(conn, pipeline):
            raise RunInProgress(f"another run of {pipeline!r} is in progress")
        try:
            run_id = ledger.start_run(conn, pipeline, trigger)
            summary = RunSummary(run_id, pipeline, "succeeded", excluded=excluded)
            try:
                _load(conn, db_url, pipeline, run_id, targets, gate_of, hooks, files, summary)
            except Exception as exc:  # recorded on the run, then reported by the caller
                summary.error = str(exc) if isinstance(exc, DatabaseError) else f"{type(exc).__name__}: {exc}"
            if summary.error or summary.count("failed"):
                summary.status = "failed"
            if hooks.hooks:  # some stage follows this pipeline: how many messages it was sent
                summary.chain = {"published": sum(h.published for h in hooks.hooks)}
            ledger.finish_run(conn, run_id, summary.status, len(files), summary.error, {"trigger": trigger})
        finally:
            ledger.unlock(conn, pipeline)
    finally:
        conn.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _load(conn, db_url, pipeline, run_id, targets, gate_of, hooks, files, summary) -> None:
    known = ledger.known_files(conn, pipeline)
    loaded = ledger.loaded_content(conn, pipeline)
    ready: list[StagedFile] = []
    for f in files:
        sha = f.meta.get("sha256") or "unread"
        if f.meta.get("error"):
            ledger.record_outcome(conn, ledger.LedgerRow.of(pipeline, run_id, f.entry, sha, "failed"),
                                  error=f.meta["error"])
            summary.files.append(FileOutcome(f.entry.name, "failed", error=f.meta["error"]))
        elif any(k.sha256 == sha and k.status in ledger.LOADED_STATES for k in known.get(f.entry.name, ())):
            summary.unchanged += 1  # this very file is loaded: a repeated event
        elif sha in loaded:  # (a Lambda step skips by content alone: [source] same_content = "skip")
            first_id, first_name = loaded[sha][0]
            ledger.record_outcome(conn, ledger.LedgerRow.of(pipeline, run_id, f.entry, sha, "skipped"),
                                  duplicate_of=first_id, error=f"same content as {first_name}, already loaded")
            summary.files.append(FileOutcome(f.entry.name, "skipped", error=f"same content as {first_name}"))
        else:
            loaded.setdefault(sha, []).append((None, f.entry.name))
            ready.append(f)
    if not ready:
        return
    load_conn = connect_loader(db_url)
    try:
        try:
            _unit(load_conn, pipeline, run_id, targets, gate_of, hooks, ready, summary)
        except (FileError, DatabaseError):
            if len(ready) == 1:
                _record_failure(conn, pipeline, run_id, ready[0], summary)
                return
            for f in ready:  # isolate the bad file(s)
                try:
                    _unit(load_conn, pipeline, run_id, targets, gate_of, hooks, [f], summary)
                except (FileError, DatabaseError):
                    _record_failure(conn, pipeline, run_id, f, summary)
    finally:
        load_conn.close()


def _record_failure(conn, pipeline, run_id, f: StagedFile, summary: RunSummary) -> None:
    """Record the file being handled in the current `except` block as failed, with the error."""
    exc = sys.exc_info()[1]
    ledger.record_outcome(conn, ledger.LedgerRow.of(pipeline, run_id, f.entry, f.meta["sha256"], "failed"),
                          error=str(exc))
    summary.files.append(FileOutcome(f.entry.name, "failed", error=str(exc)))


def _gates(project: Project) -> Callable[[LoadUnit], Gate]:
    """The same contracts (chute.toml and pipeline.py) as `chute run` applies."""
    contracts = contracts_of(project.tables, build_plan(project).contracts)
    return lambda unit: Gate(contracts, project.source, unit)


def _unit(load_conn, pipeline, run_id, targets: dict[str, Target], gate_of, hooks: CommitHooks,
          files: list[StagedFile], summary) -> None:
    """The rows of `files` into every target, their ledger rows, rejects and the run counters:
    one transaction. Rows are checked by the same gate (types, contracts) as in `chute run`."""
    unit = LoadUnit(load_conn, pipeline, run_id, allow_direct=False)
    gate = gate_of(unit)
    rows: list[ledger.LedgerRow] = []
    with undone_on_failure(unit, hooks, gate, targets):
        for f in files:
            loaded = 0
            for table, target in targets.items():
                conformed = gate.check(f.frame(table), target, f.entry.name)
                unit.write(target, conformed)
                hooks.rows(table, conformed)
                loaded += conformed.height
            gate.enforce(f.entry.name, f.meta.get("rows_read") or 0)
            rows.append(ledger.LedgerRow.of(pipeline, run_id, f.entry, f.meta["sha256"], "loaded",
                                            rows_read=f.meta.get("rows_read"), rows_loaded=loaded,
                                            rows_rejected=gate.rejected.get(f.entry.name, 0)))
        if any(r.rows_rejected for r in rows):  # the raw lines are in S3: rejects keep the row as JSON
            unit.reject(gate.records([(r.name, r.sha256) for r in rows], lambda name: b""))
        hooks.commit(unit, rows)
    summary.files.extend(FileOutcome.of(r) for r in rows)

"""The load steps on AWS: the staged table datasets of a batch's files -> PostgreSQL, with
the same loader (one transaction for rows + ledger rows + run counters) and the same
ledger rules as `chute run`. A batch is spread over the children of a Distributed Map
(statemachine.py), so the load is three steps:

- `begin` (once per execution): the schema and the tables, and the run's row in chute.runs
  (found again, not doubled, when Step Functions retries or redrives the step);
- `load_files` (each child, in parallel): its own files, one transaction per file, as the
  local workers load (run/runner.py): a file whose name and content are already loaded is
  left alone (a re-delivered event, a re-run); content already loaded under another name is
  recorded `skipped` (also when another child commits it first: the ledger's unique index
  on loaded content refuses the second); a file that failed to read or transform, or
  whose rows the database refuses, is recorded `failed` with its error, and the others load;
- `finish` (once): the run's status and counters from the children's results.

The stages that follow this pipeline (chute.chain) get their messages in each file's
transaction, through the same commit hooks as `chute run` (commit_hooks.py); the results
count them, and the notify step then wakes the followers up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
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


def exclusive(project: Project) -> bool:
    """A table in replace mode is emptied once per run: its children must load one at a time."""
    return any(t.mode == "replace" for t in project.tables.values())


def begin(project: Project, db_url: str, execution: str, trigger: str = "s3") -> int:
    """Tables ready and the run registered; the same run again for the same execution."""
    conn = connect(db_url)
    try:
        schema.ensure_schema(conn)
        schema.ensure_targets(conn, targets_of(project))
        with conn.transaction():  # one run per execution, even when two attempts of Begin overlap
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('chute.aws.begin'), hashtext(%s))", (execution,))
            row = conn.execute("SELECT run_id FROM chute.runs WHERE pipeline = %s AND details->>'execution' = %s"
                               " ORDER BY run_id LIMIT 1", (project.name, execution)).fetchone()
            if row:
                return int(row[0])
            run_id = ledger.start_run(conn, project.name, trigger)
            conn.execute("UPDATE chute.runs SET details = %s WHERE run_id = %s",
                         (json.dumps({"trigger": trigger, "execution": execution}), run_id))
            return run_id
    finally:
        conn.close()


@dataclass
class ChildResult:
    """What one child did with its files (written to S3 for `finish`, never into the state)."""
    files: list[FileOutcome] = field(default_factory=list)
    unchanged: int = 0
    published: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.__dict__ for f in self.files], "unchanged": self.unchanged, "published": self.published}


def load_files(project: Project, db_url: str, run_id: int, files: list[StagedFile]) -> ChildResult:
    """One child's files, each in its own transaction."""
    pipeline = project.name
    targets = targets_of(project)
    result = ChildResult()
    summary = RunSummary(run_id, pipeline, "succeeded")
    conn = connect(db_url)
    try:
        if exclusive(project):
            if not ledger.try_lock(conn, pipeline):
                raise RunInProgress(f"another load of {pipeline!r} is in progress (a table is in replace mode)")
            # Emptied once per run: by the first file this run loaded, maybe in an earlier child.
            if conn.execute("SELECT 1 FROM chute.files WHERE run_id = %s AND status IN ('loaded', "
                            "'loaded_with_rejects') LIMIT 1", (run_id,)).fetchone():
                for t in targets.values():
                    t.truncated = True
        gate_of = _gates(project)
        hooks = CommitHooks(publishers(conn, pipeline))
        known = ledger.known_files(conn, pipeline, [f.entry.name for f in files])
        load_conn = None
        try:
            for f in files:
                sha = f.meta.get("sha256") or "unread"
                if f.meta.get("error"):
                    ledger.record_outcome(conn, ledger.LedgerRow.of(pipeline, run_id, f.entry, sha, "failed"),
                                          error=f.meta["error"])
                    summary.files.append(FileOutcome(f.entry.name, "failed", error=f.meta["error"]))
                    continue
                if any(k.sha256 == sha and k.status in ledger.LOADED_STATES for k in known.get(f.entry.name, ())):
                    result.unchanged += 1  # this very file is loaded: a repeated event, a re-run
                    continue
                if _skipped_as_duplicate(conn, pipeline, run_id, f, summary):
                    continue
                load_conn = load_conn or connect_loader(db_url)
                try:
                    _unit(load_conn, pipeline, run_id, targets, gate_of, hooks, [f], summary)
                except (FileError, DatabaseError) as exc:
                    if "files_content_loaded_once" in str(exc) and \
                            _skipped_as_duplicate(conn, pipeline, run_id, f, summary):
                        continue  # another child committed the same content first
                    _record_failure(conn, pipeline, run_id, f, summary)
        finally:
            if load_conn is not None:
                load_conn.close()
            if exclusive(project):
                ledger.unlock(conn, pipeline)
        result.published = sum(getattr(h, "published", 0) for h in hooks.hooks)
    finally:
        conn.close()
    result.files = summary.files
    return result


def _skipped_as_duplicate(conn, pipeline: str, run_id: int, f: StagedFile, summary: RunSummary) -> bool:
    first = conn.execute("SELECT file_id, name FROM chute.files WHERE pipeline = %s AND sha256 = %s AND status IN "
                         "('loaded', 'loaded_with_rejects') LIMIT 1", (pipeline, f.meta["sha256"])).fetchone()
    if first is None:
        return False
    first_id, first_name = first
    if first_name == f.entry.name:
        return False  # the same name: handled as unchanged by the caller's ledger look-up
    ledger.record_outcome(conn, ledger.LedgerRow.of(pipeline, run_id, f.entry, f.meta["sha256"], "skipped"),
                          duplicate_of=first_id, error=f"same content as {first_name}, already loaded")
    summary.files.append(FileOutcome(f.entry.name, "skipped", error=f"same content as {first_name}"))
    return True


def record_failed(project: Project, db_url: str, run_id: int,
                  entries: list[tuple[FileEntry, str]]) -> dict[str, tuple[str, str | None]]:
    """Files whose child never reported (it failed past its retries): `failed`, with why, unless
    the ledger already has them in this run (the child died after loading them). Returns each
    file's status in this run and its error."""
    conn = connect(db_url)
    try:
        names = [e.name for e, _ in entries]
        seen = {n: (st, err) for n, st, err in conn.execute(
            "SELECT name, status, error FROM chute.files WHERE pipeline = %s AND run_id = %s AND name = ANY(%s)",
            (project.name, run_id, names))}
        for entry, error in entries:
            if entry.name not in seen:
                ledger.record_outcome(conn, ledger.LedgerRow.of(project.name, run_id, entry, "unread", "failed"),
                                      error=error)
                seen[entry.name] = ("failed", error)
        return seen
    finally:
        conn.close()


def finish(project: Project, db_url: str, run_id: int, summary: RunSummary, files_seen: int,
           details: dict[str, Any], export: Callable[[str], Any] | None = None) -> None:
    """The run closed in chute.runs; then, as `chute run` does when its run loaded rows, each
    table's export (`[tables.*] export`) rewritten from the table, into export(path)'s writer."""
    from chute.load.export import export_to

    conn = connect(db_url)
    try:
        ledger.finish_run(conn, run_id, summary.status, files_seen, summary.error, details)
        if export is None or not summary.count("loaded"):
            return
        for name, table in project.tables.items():
            if not table.export:
                continue
            out = export(table.export)
            try:
                export_to(conn, project.name, table.schema_, name, list(table.primary_key), out)
            except BaseException:
                out.abort()
                raise
            out.close()
            summary.exports.append(table.export)
    finally:
        conn.close()


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

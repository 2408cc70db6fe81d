"""`chute replay`: load quarantined records again, after the contract or the data was fixed.

Records are found again by their position in their file (`row_number`): the file is read
from the landing zone (it must be unchanged) or from a corrected copy given with --data
(records fixed in place, none added or removed), only the selected records go through the
nodes and the gate, and those that now pass are loaded. Their rows, the `replayed` mark on
their rejects and the ledger counters commit in ONE transaction, and only `pending` rejects
are ever replayed, so a record can never load twice. Records that still fail stay pending.

A file that failed as a whole (say, past a reject threshold) is replayed by loading it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from chute.ledger import schema
from chute.ledger import files as ledger
from chute.load.unit import LoadUnit
from chute.db.postgres import connect, connect_loader, ensure_table
from chute.errors import ChuteError, ConfigError, FileError, RunInProgress
from chute.config.project import Project
from chute.quality.contracts import adopt_columns, contracts_of
from chute.quality.gate import Gate
from chute.quality.quarantine import rejects_command, select_rejects
from chute.formats.salvage import ROW_COLUMN
from chute.formats.reader import read_records

if TYPE_CHECKING:
    from chute.pipeline.graph import Plan
    from chute.sources.base import FileEntry, LandingZone


@dataclass
class ReplayResult:
    run_id: int | None
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return sum(f.get("records_replayed", 0) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "records_replayed": self.replayed, "files": self.files}


@dataclass
class _ReplayRun:
    """What the files of one replay run share."""
    db_url: str
    project: Project
    pipeline: str
    run_id: int
    plan: Plan
    static: dict
    targets: dict
    contracts: dict
    zone: LandingZone  # where the files are read again, unless --data gives a corrected copy
    entries: dict[str, FileEntry]
    data: Path | None


def replay(project: Project, db_url: str, *, data: Path | None = None, pipeline: str | None = None,
           **filters: Any) -> ReplayResult:
    """`pipeline`: the ledger's name for the project's loads, if not its name (`chute load`'s)."""
    from chute.run.plan import build_plan, landing_zone, provided_values
    from chute.db.target import targets_of

    pipeline = pipeline or project.name

    conn = connect(db_url)
    try:
        schema.ensure_schema(conn)
        pending = select_rejects(conn, pipeline, state="pending", limit=None, **filters)
        failed = None if pending else _failed_file(conn, pipeline, filters.get("file"))
    finally:
        conn.close()
    if failed:
        return _replay_failed_file(project, db_url, pipeline, failed)
    if not pending:
        raise ConfigError(f"nothing to replay: no pending rejects match (see {rejects_command(pipeline)})")
    conn = connect(db_url)
    try:
        if not ledger.try_lock(conn, pipeline):
            raise RunInProgress(f"a run of {pipeline!r} is in progress; replay when it ends")
        try:
            plan = build_plan(project)
            targets = targets_of(project)
            # Thresholds judge a file's first load; a replay loads what passes and keeps the rest.
            contracts = {name: c.model_copy(update={"max_rejects": None, "max_reject_ratio": None})
                         for name, c in contracts_of(project.tables, plan.contracts).items()}
            for t in targets.values():
                ensure_table(conn, t)
            adopt_columns(conn, targets, contracts)
            static = plan.run_static(provided_values(project))
            run_id = ledger.start_run(conn, pipeline, "replay")
            result = ReplayResult(run_id)
            by_file: dict[int, list[dict]] = {}
            for r in pending:
                by_file.setdefault(r["file_id"], []).append(r)
            zone = landing_zone(project)
            run = _ReplayRun(db_url, project, pipeline, run_id, plan, static, targets, contracts, zone,
                             {e.name: e for e in zone.list()} if data is None else {}, data)
            status, error = "succeeded", None
            try:
                for file_id, rejects in by_file.items():
                    result.files.append(_replay_file(run, file_id, rejects))
            except ChuteError as exc:
                status, error = "failed", str(exc)
                raise
            finally:
                ledger.finish_run(conn, run_id, status, len(by_file), error, {})
            return result
        finally:
            ledger.unlock(conn, pipeline)
    finally:
        conn.close()


def _replay_file(run: _ReplayRun, file_id: int, rejects: list[dict]) -> dict[str, Any]:
    from chute.pipeline.graph import as_frame

    project, run_id = run.project, run.run_id

    name, sha = rejects[0]["file_name"], rejects[0]["file_sha256"]
    wanted = {r["row_number"] for r in rejects if r["row_number"] is not None}
    outcome: dict[str, Any] = {"file": name, "records_selected": len(wanted)}
    if not wanted:
        raise ConfigError(f"{name}: the selected rejects have no row number (the nodes dropped the "
                          f"{ROW_COLUMN!r} column), so they cannot be found in the file again")
    if run.data is not None:
        raw = run.data.read_bytes()
    else:
        entry = run.entries.get(name)
        if entry is None:
            raise ConfigError(f"{name} is no longer in the landing zone; give a copy with --data PATH")
        raw = bytes(run.zone.read(entry))
        if hashlib.sha256(raw).hexdigest() != sha:
            raise ConfigError(f"{name} changed since it was loaded; give the corrected copy with --data PATH "
                              "(records fixed in place), or restore the original")
    # the records as the run read them (ROW_COLUMN numbers agree) and those its reader refuses
    frame, parse_rejects = read_records(pa.py_buffer(raw), project.source, 1 << 30)
    still_bad = {r.row_number for r in parse_rejects if r.row_number in wanted}
    frame = frame.filter(pl.col(ROW_COLUMN).is_in(sorted(wanted))).with_columns(
        pl.lit(name).alias(project.source.file_column))
    load_conn = connect_loader(run.db_url)
    reasons: dict[str, int] = {}
    try:
        for _ in range(3):  # a record passes when all its rows pass; drop the others and check again
            candidates = frame.filter(~pl.col(ROW_COLUMN).is_in(sorted(still_bad)))
            unit = LoadUnit(load_conn, run.pipeline, run_id, allow_direct=False)
            gate = Gate(run.contracts, project.source, unit)
            goods = []
            values = run.plan.run_batch(candidates, run.static, {}) if candidates.height else {}
            for table, target in run.targets.items():
                if not candidates.height:
                    break
                goods.append((target, gate.check(as_frame(values[table], table), target, name)))
            newly_bad = gate.rejected_rows()
            for reason, n in gate.reason_counts().items():
                reasons[reason] = reasons.get(reason, 0) + n
            if not newly_bad:
                break
            unit.rollback()
            gate.undo()
            still_bad |= newly_bad
        else:
            raise FileError(f"{name}: replay could not settle which records pass; nothing was replayed")
        replayed_rows = sorted(wanted - still_bad)
        try:
            loaded = 0
            for target, good in goods:
                unit.write(target, good)
                loaded += good.height
            ids = [r["reject_id"] for r in rejects if r["row_number"] in set(replayed_rows)]
            marked = _mark_replayed(unit, ids, run_id)
            if marked != len(ids):
                raise FileError(f"{name}: {len(ids) - marked} of the selected rejects were replayed meanwhile; "
                                "nothing was replayed")
            unit.commit([], extra=[(ledger.REPLAYED_FILE_SQL, (loaded, file_id)),
                                   # (the commit adds the rows written to the run's rows_loaded)
                                   ("UPDATE chute.runs SET files_loaded = files_loaded + 1 WHERE run_id = $1",
                                    (run_id,))])
        except BaseException:
            unit.rollback()
            gate.undo()
            raise
    finally:
        load_conn.close()
    outcome.update(records_replayed=len(replayed_rows), rows_loaded=loaded,
                   records_still_failing=len(wanted & still_bad),
                   still_failing_because=reasons | {r.reason: 1 for r in parse_rejects if r.row_number in wanted})
    return outcome


def _mark_replayed(unit: LoadUnit, ids: list[int], run_id: int) -> int:
    if not ids:
        return 0
    unit.cur.execute("UPDATE chute.rejects SET replay_state = 'replayed', replayed_at = now(), replay_run_id = $1"
                     " WHERE reject_id = ANY($2) AND replay_state = 'pending' RETURNING reject_id", (run_id, ids))
    return len(unit.cur.fetchall())



def _failed_file(conn, pipeline: str, name: str | None) -> str | None:
    if not name:
        return None
    latest = ledger.latest_versions(conn, pipeline, [name]).get(name)
    return name if latest and latest[0] == "failed" else None


def _replay_failed_file(project: Project, db_url: str, pipeline: str, name: str) -> ReplayResult:
    """A file that failed as a whole: load it again (after the contract was fixed)."""
    from chute.run.runner import Runner
    from chute.sources.selection import Selection

    summary = Runner(project, db_url, pipeline_name=pipeline, trigger="replay", retry_failed=True,
                     selection=Selection(only={name})).run()
    files = [{"file": f.name, "status": f.status, "rows_loaded": f.rows_loaded, "rows_rejected": f.rows_rejected,
              "error": f.error} for f in summary.files]
    if not files:
        raise ConfigError(f"{name} is no longer in the landing zone (or unchanged since it failed)")
    return ReplayResult(summary.run_id, files)


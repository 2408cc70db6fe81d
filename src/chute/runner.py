"""One run: list the landing zone -> skip what the ledger knows -> read and hash -> nodes ->
load each unit (rows + ledger rows, one transaction) -> record the run -> export.

Small files are grouped into one unit (one transaction) up to [source] batch_mb of input;
if a grouped unit fails, each of its files is retried alone so one bad file cannot sink
the others. A file bigger than that is streamed in blocks into one transaction of its own.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from . import ledger
from .db.loader import LoadUnit, Renderer, Target
from .db.postgres import connect, connect_adbc, ensure_table, qualified
from .errors import ChuteError, ConfigError, DatabaseError, FileError, RunInProgress, TransformError
from .formats.csv import read_csv
from .pipeline import Pipeline, Plan, load_pipeline
from .project import Project
from .quality.contracts import contracts_of
from .quality.gate import Gate, adopt_columns
from .quality.records import ParseReject, numbered, read_lenient
from .sources.base import FileEntry, LandingZone
from .sources.local import LocalZone

Progress = Callable[[int, int, int], None]  # files done, files to do, rows sent so far


@dataclass
class FileOutcome:
    name: str
    status: str  # loaded | loaded_with_rejects | failed | skipped
    rows_read: int | None = None
    rows_loaded: int | None = None
    error: str | None = None
    rows_rejected: int = 0


@dataclass
class RunSummary:
    run_id: int | None
    pipeline: str
    status: str  # succeeded | failed
    seconds: float = 0.0
    files: list[FileOutcome] = field(default_factory=list)
    unchanged: int = 0  # already in the ledger, not looked at again
    excluded: int = 0  # refused by a file filter of the pipeline (not read, asked again next run)
    still_failed: list[str] = field(default_factory=list)  # failed before, same content, not retried
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Files in that state; 'loaded' includes those loaded with rejects."""
        if status == "loaded":
            return sum(f.status in ledger.LOADED_STATES for f in self.files)
        return sum(f.status == status for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded or 0 for f in self.files)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(files_loaded=self.count("loaded"), files_failed=self.count("failed"),
                    files_skipped=self.count("skipped"), rows_loaded=self.rows_loaded,
                    files_with_rejects=self.count("loaded_with_rejects"), rows_rejected=self.rows_rejected)
        return data


@dataclass
class _Ready:
    """A file read, hashed and parsed (or the reason it could not be), waiting to be loaded."""
    entry: FileEntry
    sha256: str
    frame: pl.DataFrame | None  # None for a big file that is streamed at load time
    error: str | None = None
    rejects: list[ParseReject] = field(default_factory=list)  # records the reader refused (quarantined)


def landing_zone(project: Project) -> LandingZone:
    return LocalZone(project.landing_path, project.landing.patterns, project.landing.recursive)


def build_plan(project: Project) -> Plan:
    module = project.pipeline.module
    pipeline = load_pipeline(project.path(module)) if module else Pipeline([])
    return pipeline.plan(project.pipeline.input, [*project.references, *project.params], project.tables)


def targets_of(project: Project) -> dict[str, Target]:
    return {name: Target(t.schema_, name, t.mode, t.column_types(), list(t.primary_key))
            for name, t in project.tables.items()}


class Runner:
    def __init__(self, project: Project, db_url: str, *, pipeline_name: str | None = None,
                 trigger: str = "manual", retry_failed: bool = False, progress: Progress | None = None):
        self.project = project
        self.db_url = db_url
        self.pipeline = pipeline_name or project.name
        self.trigger = trigger
        self.retry_failed = retry_failed
        self.progress = progress or (lambda done, total, rows: None)
        self.source = project.source
        self.batch_bytes = int(project.source.batch_mb * (1 << 20))
        # Input per transaction: several batches, so an empty merge table takes one plain COPY.
        self.unit_bytes = max(self.batch_bytes, 1 << 30)
        self.zone = landing_zone(project)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        started = time.perf_counter()
        plan = build_plan(self.project)
        targets = targets_of(self.project)
        self.contracts = contracts_of(self.project.tables, plan.contracts)
        conn = connect(self.db_url)
        try:
            ledger.ensure_schema(conn)
            for t in targets.values():
                ensure_table(conn, t.schema, t.table, t.columns, t.primary_key)
            adopt_columns(conn, targets, self.contracts)
            if not ledger.try_lock(conn, self.pipeline):
                raise RunInProgress(f"another run of {self.pipeline!r} is in progress; try again when it ends")
            try:
                summary = self._run_locked(conn, plan, targets)
            finally:
                ledger.unlock(conn, self.pipeline)
        finally:
            conn.close()
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    def _run_locked(self, conn: psycopg.Connection, plan: Plan, targets: dict[str, Target]) -> RunSummary:
        run_id = ledger.start_run(conn, self.pipeline, self.trigger)
        summary = RunSummary(run_id, self.pipeline, "succeeded")
        self.timings: dict[str, float] = {}
        self.rows_sent = 0  # rows sent to PostgreSQL so far (committed or not): for the progress bar
        entries: list[FileEntry] = []
        try:
            entries = self.zone.list()
            pending = self._classify(conn, entries, summary)
            static = plan.run_static(self._provided()) if pending else {}
            if plan.filters:
                wanted = [e for e in pending if plan.wants(e.name, static) is None]
                summary.excluded = len(pending) - len(wanted)
                pending = wanted
            if pending:
                loaded = ledger.loaded_content(conn, self.pipeline)
                self._load_all(conn, plan, static, targets, pending, loaded, run_id, summary)
            summary.exports = self._export(conn, summary)
        except ChuteError as exc:
            summary.error = str(exc)
        except Exception as exc:  # a bug or an unforeseen failure: record it, never leave the run 'running'
            summary.error = f"{type(exc).__name__}: {exc}"
        if summary.error or summary.count("failed"):
            summary.status = "failed"
        summary.timings = {k: round(v, 3) for k, v in self.timings.items()}
        ledger.finish_run(conn, run_id, summary.status, len(entries), summary.error, {"timings": summary.timings})
        return summary

    def _provided(self) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.project.params)
        for name, relative in self.project.references.items():
            path = self.project.path(relative)
            if not path.is_file():
                raise ConfigError(f"reference {name!r}: file {relative} not found in {self.project.root}")
            values[name] = path
        return values

    def _classify(self, conn: psycopg.Connection, entries: list[FileEntry], summary: RunSummary) -> list[FileEntry]:
        """Drop files the ledger already settled, judged by name, size and mtime (no hashing)."""
        known = ledger.known_files(conn, self.pipeline)
        pending = []
        for e in entries:
            same = [k for k in known.get(e.name, ()) if k.size == e.size and k.mtime_ns == e.mtime_ns]
            if any(k.status != "failed" for k in same):
                summary.unchanged += 1
            elif same and not self.retry_failed:
                summary.still_failed.append(e.name)
            else:
                pending.append(e)
        return pending

    # -- loading ---------------------------------------------------------------------------
    def _load_all(self, conn, plan, static, targets, pending, loaded, run_id, summary) -> None:
        """Load the pending files, one transaction per `unit_bytes` of input.

        Files are read in groups of `batch_mb` on worker threads, one group ahead of the load,
        and each group's rows go into the open transaction as they come. If a unit fails, it
        is rolled back and its groups are loaded again one by one, isolating bad files.
        """
        render = Renderer(conn)
        seen: dict[str, tuple[int | None, str]] = dict(loaded)
        adbc_conn = connect_adbc(self.db_url)
        args = (adbc_conn, render, plan, static, targets)
        try:
            with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as readers, ThreadPoolExecutor(1) as ahead:
                stream = self._settled(list(self._groups(pending)), readers, ahead, conn, seen, run_id, summary)
                while True:
                    taken: list[list[_Ready]] = []
                    try:
                        self._load_unit(*args, self._take(stream, taken), run_id, summary)
                    except (FileError, DatabaseError):
                        for ready in taken:  # the frames were freed: read the files again
                            for item in ready:
                                seen.pop(item.sha256, None)
                            again = self._settle(conn, [self._read(item.entry) for item in ready], seen, run_id,
                                                 summary)
                            if again:
                                self._load_group(*args, again, run_id, summary)
                    if not taken:
                        break
        finally:
            adbc_conn.close()

    def _take(self, stream: Iterator[list[_Ready]], taken: list[list[_Ready]]) -> Iterator[list[_Ready]]:
        """Groups from the stream until one unit's worth of input has been taken."""
        size = 0
        for ready in stream:
            taken.append(ready)
            yield ready
            size += sum(item.entry.size for item in ready)
            if size >= self.unit_bytes:
                return

    def _settled(self, groups, readers, ahead, conn, seen, run_id, summary) -> Iterator[list[_Ready]]:
        """Each group's loadable files; unreadable and duplicate files are recorded on the way."""
        def read_group(group: list[FileEntry]) -> list[_Ready]:
            return list(readers.map(self._read, group))

        upcoming = ahead.submit(read_group, groups[0]) if groups else None
        for i in range(len(groups)):
            t0 = time.perf_counter()
            results = upcoming.result()
            self._time("read (waiting)", t0)
            if i + 1 < len(groups):
                upcoming = ahead.submit(read_group, groups[i + 1])
            if ready := self._settle(conn, results, seen, run_id, summary):
                yield ready
            done = sum(len(g) for g in groups[:i + 1])
            self.progress(done, sum(map(len, groups)), self.rows_sent)

    def _settle(self, conn, results: list[_Ready], seen, run_id, summary) -> list[_Ready]:
        """Record unreadable and duplicate files; return the ones to load (now marked seen)."""
        ready = []
        for item in results:
            if item.error is not None:
                self._failed(conn, item.entry, item.sha256, run_id, summary, item.error)
            elif item.sha256 in seen:
                self._duplicate(conn, item, seen[item.sha256], run_id, summary)
            else:
                seen[item.sha256] = (None, item.entry.name)
                ready.append(item)
        return ready

    def _groups(self, pending: list[FileEntry]) -> Iterator[list[FileEntry]]:
        group: list[FileEntry] = []
        size = 0
        for e in pending:
            if e.size > self.batch_bytes:
                yield [e]
                continue
            if group and size + e.size > self.batch_bytes:
                yield group
                group, size = [], 0
            group.append(e)
            size += e.size
        if group:
            yield group

    def _read(self, entry: FileEntry) -> _Ready:
        """Hash and (for small files) parse one file. Runs on a worker thread: no database here."""
        try:
            if entry.size > self.batch_bytes:  # streamed at load time; only hashed now
                with open(self.zone.local_path(entry), "rb") as f:
                    return _Ready(entry, hashlib.file_digest(f, "sha256").hexdigest(), None)
            data = self.zone.read(entry)
        except OSError as exc:
            return _Ready(entry, "", None, f"cannot read the file: {exc.strerror or exc}")
        sha = hashlib.sha256(data).hexdigest()
        rejects: list[ParseReject] = []
        try:
            frames = list(numbered(read_csv(data, self.source, self.batch_bytes)))
            frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        except FileError as exc:
            try:  # quarantine the records the strict parse refused, load the others
                frame, rejects = read_lenient(data, self.source, exc)
            except FileError as final:
                return _Ready(entry, sha, None, str(final))
        return _Ready(entry, sha, frame.with_columns(pl.lit(entry.name).alias(self.source.file_column)), None, rejects)

    def _duplicate(self, conn, item: _Ready, first: tuple[int | None, str], run_id, summary) -> None:
        first_id, first_name = first
        ledger.record_outcome(conn, self.pipeline, run_id, item.entry, item.sha256, "skipped",
                              duplicate_of=first_id, error=f"same content as {first_name}, already loaded")
        summary.files.append(FileOutcome(item.entry.name, "skipped", error=f"same content as {first_name}"))

    def _load_group(self, adbc_conn, render, plan, static, targets, ready: list[_Ready], run_id, summary) -> None:
        """One group in its own transaction; if it fails, each of its files alone."""
        args = (adbc_conn, render, plan, static, targets)
        try:
            try:
                self._load_unit(*args, [ready], run_id, summary)
            except DatabaseError as exc:
                if "duplicate key value violates unique constraint" not in str(exc):
                    raise
                # Rows copied straight into an empty merge table repeated a key: merge through the stage.
                self._load_unit(*args, [ready], run_id, summary, direct=False)
        except (FileError, DatabaseError) as exc:
            if len(ready) == 1:
                self._failed(render.conn, ready[0].entry, ready[0].sha256, run_id, summary, str(exc))
                return
            for item in ready:  # isolate the bad file(s)
                self._load_group(adbc_conn, render, plan, static, targets, [item], run_id, summary)

    def _load_unit(self, adbc_conn, render, plan, static, targets, groups: Iterable[list[_Ready]], run_id,
                   summary, direct: bool = True) -> None:
        """Rows of every file in `groups`, their ledger rows and the run counters: one transaction."""
        unit = LoadUnit(adbc_conn, render, self.pipeline, run_id, allow_direct=direct)
        gate = Gate(self.contracts, self.source, unit)
        per_file_loaded = gate.loaded
        rows_read: dict[str, int] = {}
        replace_state = {name: t.truncated for name, t in targets.items()}
        fc = self.source.file_column
        files: list[dict] = []
        try:
            taken_groups: list[list[_Ready]] = []
            for ready in groups:
                taken_groups.append(ready)
                for item in ready:
                    rows_read[item.entry.name] = item.frame.height if item.frame is not None else 0
                    gate.parse_rejects(item.entry.name, item.rejects)
                for frame in self._frames(ready):
                    if ready[0].frame is None:  # streamed: count as the blocks go by
                        rows_read[ready[0].entry.name] += frame.height
                    t0 = time.perf_counter()
                    values = plan.run_batch(frame, static, self.timings)
                    self._time("transform", t0)
                    t0 = time.perf_counter()
                    only_file = ready[0].entry.name if len(ready) == 1 else None
                    for table, target in targets.items():
                        # Drift policy, types and the table's contract; rejected rows stay in the gate.
                        conformed = gate.check(_frame_of(values[table], table), target, only_file)
                        unit.write(target, conformed)
                        self.rows_sent += conformed.height
                    self._time("load", t0)
                for item in ready:
                    e = item.entry
                    gate.enforce(e.name, rows_read[e.name])
                    rejected = gate.rejected.get(e.name, 0)
                    files.append(dict(pipeline=self.pipeline, name=e.name, uri=e.uri, size=e.size,
                                      mtime_ns=e.mtime_ns, sha256=item.sha256,
                                      status="loaded_with_rejects" if rejected else "loaded", run_id=run_id,
                                      rows_read=rows_read[e.name] + len(item.rejects),
                                      rows_loaded=per_file_loaded.get(e.name, 0), rows_rejected=rejected))
                    item.frame = None  # written: free it now (a failed unit reads the file again)
            if not files:
                return
            if any(f["rows_rejected"] for f in files):
                where = {i.entry.name: self.zone.local_path(i.entry) for ready in taken_groups for i in ready}
                unit.reject(gate.records([(f["name"], f["sha256"]) for f in files], where.__getitem__))
            if not per_file_loaded:  # the nodes dropped the file column: exact per file only when alone
                for f in files:
                    f["rows_loaded"] = unit.rows_written if len(files) == 1 else None
            t0 = time.perf_counter()
            unit.commit(files)
            self._time("commit", t0)
        except BaseException:
            unit.rollback()
            gate.undo()
            for name, t in targets.items():
                t.truncated = replace_state[name]
            raise
        for f in files:
            summary.files.append(FileOutcome(f["name"], f["status"], f["rows_read"], f["rows_loaded"],
                                             rows_rejected=f["rows_rejected"]))

    def _frames(self, ready: list[_Ready]) -> Iterator[pl.DataFrame]:
        if len(ready) == 1 and ready[0].frame is None:  # a big file: stream it
            entry = ready[0].entry
            lit = pl.lit(entry.name).alias(self.source.file_column)
            for frame in numbered(read_csv(self.zone.local_path(entry), self.source, self.batch_bytes)):
                yield frame.with_columns(lit)
            return
        frames = [r.frame for r in ready if r.frame is not None]
        yield pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]

    def _failed(self, conn, entry: FileEntry, sha: str, run_id: int, summary: RunSummary, message: str) -> None:
        ledger.record_outcome(conn, self.pipeline, run_id, entry, sha or "unread", "failed", error=message)
        summary.files.append(FileOutcome(entry.name, "failed", error=message))

    def _time(self, stage: str, t0: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    # -- after the loads -------------------------------------------------------------------
    def _export(self, conn: psycopg.Connection, summary: RunSummary) -> list[str]:
        """Rewrite each table's export CSV from the table, when this run loaded rows."""
        if not summary.count("loaded"):
            return []
        written = []
        for name, table in self.project.tables.items():
            if not table.export:
                continue
            path = self.project.path(table.export)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            order = sql.SQL(", ").join(map(sql.Identifier, table.primary_key)) if table.primary_key else sql.SQL("1")
            query = sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)").format(
                qualified(table.schema_, name), order)
            t0 = time.perf_counter()
            with partial.open("wb") as out, conn.cursor().copy(query) as copy:
                for block in copy:
                    out.write(block)
            partial.replace(path)  # readers never see a half-written file
            self._time("export", t0)
            written.append(str(path))
        return written


def _frame_of(value: Any, table: str) -> pl.DataFrame:
    if isinstance(value, pl.LazyFrame):
        return value.collect()
    if isinstance(value, pl.DataFrame):
        return value
    raise TransformError(f"dataset {table!r} must be a polars DataFrame, got {type(value).__name__}")


def resolve_database(project: Project | None, cli_url: str | None, folder: Path) -> str:
    """--db, else $CHUTE_DATABASE_URL, else chute.toml, else the embedded cluster (started if needed)."""
    import os

    from .db.embedded import EmbeddedPostgres

    url = cli_url or os.environ.get("CHUTE_DATABASE_URL") or (project.configured_database_url() if project else None)
    if url:
        return url
    return EmbeddedPostgres((project.root if project else folder) / ".chute" / "pg").start()

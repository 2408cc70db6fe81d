"""One run: list the landing zone -> skip what the ledger knows -> read and hash -> nodes ->
load each unit (rows + ledger rows, one transaction) -> record the run -> export.

Small files are grouped into one unit (one transaction) up to [source] batch_mb of input;
if a grouped unit fails, each of its files is retried alone so one bad file cannot sink
the others. A file bigger than that is streamed in blocks into one transaction of its own.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg

from chute.ledger import schema
from chute.ledger import deadletters
from chute.ledger import files as ledger
from chute.ledger import workers
from chute.run.after_run import after_run
from chute.load.commit_hooks import CommitHooks, undone_on_failure
from chute.db.postgres import connect, connect_loader, database_lost
from chute.db.target import Target, targets_of
from chute.ledger.summary import FileOutcome, RunSummary
from chute.pipeline.graph import as_frame
from chute.run.plan import build_plan, landing_zone, provided_values
from chute.errors import ChuteError, DatabaseError, DatabaseUnavailable, FileError, RunInProgress
from chute.load.export import ExportRows, first_loads, write_export
from chute.pipeline.graph import Plan
from chute.config.project import Project
from chute.retry import is_transient
from chute.quality.contracts import adopt_columns, contracts_of
from chute.sources.base import FileEntry
from chute.sources.selection import Selection

# The loading machinery (pyarrow, pgpq, the readers, the quality gate) is imported in the
# methods that load: a run with nothing new never needs it, and its imports were a third of
# that run's time (benchmarks/bench_noop.py).
if TYPE_CHECKING:
    import pyarrow as pa

    from chute.db.kept import KeptConnections
    from chute.formats.salvage import ParseReject

FIRST_GROUP = 4 << 20  # bytes of input in the first group of small files (see Runner._groups)
# ... and in the later ones (or batch_mb, if smaller). One group is loaded while the next is
# read, each ~5x its size in memory (text, frame, nodes' output, cast, Arrow): 64 MB groups
# took the stocks example's run to ~720 MB of peak memory, 8 MB ones to ~470 MB, no slower.
GROUP_BYTES = 8 << 20

Progress = Callable[[int, int, int], None]  # files done, files to do, rows sent so far


@dataclass
class _Ready:
    """A file read, hashed and parsed (or the reason it could not be), waiting to be loaded."""
    entry: FileEntry
    sha256: str
    frame: pl.DataFrame | None  # None for a big file that is streamed at load time
    error: str | None = None
    retryable: bool = False  # the error may go away (an I/O error), unlike bad data
    rejects: list[ParseReject] = field(default_factory=list)  # records the reader refused (quarantined)
    digest: Future[str] | None = None  # a streamed file's sha256, computed while it loads (sha256 "" until then)
    batch: pl.DataFrame | None = None  # the rows of the files read together with this one (frame: a slice)
    by_name: bool = False  # its content is loaded already under another name, whose rows its name changes


@dataclass
class UnitContext:
    """What a run's loads share: its connections, plan, targets, the content seen so far, and
    where outcomes go (the ledger's run and the summary)."""
    conn: psycopg.Connection  # the ledger's connection (outcomes outside a load's transaction)
    plan: Plan
    static: dict[str, Any]  # once-per-run values of the plan (references, params, static nodes)
    targets: dict[str, Target]
    run_id: int
    summary: RunSummary
    load_conn: Any = None  # the loader connection (psycopg raw, for COPY): set by Runner._load_all
    # sha256 -> [(file_id, name)] loaded or in hand (several names: a file's name can be data, see _twin)
    seen: dict[str, list[tuple[int | None, str]]] = field(default_factory=dict)


class _SameContent(FileError):
    """A streamed file turned out, once hashed, to hold content already loaded or being loaded."""

    def __init__(self, sha256: str, first: tuple[int | None, str]):
        super().__init__(f"same content as {first[1]}")
        self.sha256, self.first = sha256, first


class Runner:
    def __init__(self, project: Project, db_url: str, *, pipeline_name: str | None = None,
                 trigger: str = "manual", retry_failed: bool = False, progress: Progress | None = None,
                 selection: Selection | None = None, stop: threading.Event | None = None,
                 details: dict | None = None, commit_hooks: Iterable = (), consume: bool = True,
                 kept: "KeptConnections | None" = None):
        self.project = project
        # A long-running process (chute watch) keeps its connections and schema checks between
        # runs (db/kept.py); otherwise each run connects and checks afresh.
        self.kept = kept
        # Statements that ride in each load's transaction (chute.chain.publish: messages to the
        # stages that follow this pipeline, acknowledgements of the messages this run consumes).
        self.commit_hooks = list(commit_hooks)
        self.hooks: list = []
        self.export_rows: ExportRows | None = None  # a first load's rows, for the export files
        self.consume = consume  # a project with [follow] runs by consuming its queue (chute.chain)
        # What the trigger scopes the run to (names, prefix, time window, settle time): the whole zone by default.
        self.selection = selection or Selection()
        self.stop = stop or threading.Event()  # set: finish the files in hand, start no more
        self.details = details or {}
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
        self.worker = workers.Worker(db_url, self.pipeline, project.watch.lease)
        self.claim_files = project.watch.claim_files
        self.max_attempts = project.watch.max_attempts

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """The run's summary. DatabaseUnavailable when the database cannot be reached or goes
        away during the run (what was committed stays, the rest loads on the next run)."""
        try:
            return self._run()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # the connection was lost
            raise database_lost(self.db_url, exc) from None

    def _run(self) -> RunSummary:
        if self.consume and self.project.follow is not None:
            from chute.chain.consume import consume

            return consume(self)  # claims messages, extracts, then runs a Runner(consume=False)
        started = time.perf_counter()
        plan = build_plan(self.project)
        targets = targets_of(self.project)
        self.contracts = contracts_of(self.project.tables, plan.contracts)
        conn = self.kept.psycopg(self.db_url) if self.kept else connect(self.db_url)
        clean = False
        try:
            self._ensure_schemas(conn, targets)
            from chute.chain.publish import publishers

            self.hooks = [*self.commit_hooks, *publishers(conn, self.pipeline)]
            exported, files = first_loads(conn, self.project.tables), self._export_files()
            self.export_rows = ExportRows({t: files[t] for t in exported}) if exported else None
            if self.export_rows:
                self.hooks.append(self.export_rows)
            # Workers share a run by claiming files, except where a run must be alone: `replace`
            # empties the table once per run, which would erase another worker's rows.
            exclusive = any(t.mode == "replace" for t in targets.values())
            if exclusive and not ledger.try_lock(conn, self.pipeline):
                raise RunInProgress(f"another run of {self.pipeline!r} is in progress (a table is in replace mode, "
                                    "so runs do not overlap); try again when it ends")
            try:
                summary = self._run_locked(conn, plan, targets)
            finally:
                if exclusive:
                    ledger.unlock(conn, self.pipeline)
            clean = True  # the run recorded its own failures; the connection is still sound
        finally:
            if self.kept:
                self.kept.give_psycopg(self.db_url, conn, clean)
                if not clean:  # chute's tables may be what failed: check them again next time
                    self.kept.forget_checks(self.db_url)
            else:
                conn.close()
            if self.export_rows:
                self.export_rows.close()
                self.export_rows = None  # the rows are written (or the run failed): let them go
        summary.seconds = round(time.perf_counter() - started, 3)
        after_run(self.project, summary, self.zone, self.trigger)  # run log + notifications; never raises
        return summary

    def following(self, *, selection: Selection, details: dict, commit_hooks: list) -> RunSummary:
        """A chained stage's load (chain/consume.py): this run's settings, its files and hooks."""
        return Runner(self.project, self.db_url, pipeline_name=self.pipeline, trigger=self.trigger,
                      retry_failed=self.retry_failed, progress=self.progress, stop=self.stop, details=details,
                      selection=selection, commit_hooks=commit_hooks, consume=False).run()

    def _ensure_schemas(self, conn: psycopg.Connection, targets: dict[str, Target]) -> None:
        """chute's own tables (checked once per process when connections are kept), then the
        targets (checked every run: someone may have changed one meanwhile)."""
        if not (self.kept and (self.db_url, "chute") in self.kept.ensured):
            schema.ensure_schema(conn)
            if self.kept:
                self.kept.ensured.add((self.db_url, "chute"))
        schema.ensure_targets(conn, targets)
        adopt_columns(conn, targets, self.contracts)

    def _run_locked(self, conn: psycopg.Connection, plan: Plan, targets: dict[str, Target]) -> RunSummary:
        workers.reap(conn, self.pipeline)  # runs of dead workers -> abandoned; their claims expire
        with conn.transaction():
            run_id = ledger.start_run(conn, self.pipeline, self.trigger)
            self.worker.register(conn, run_id)
        self.worker.start_heartbeat()
        try:
            return self._run_registered(conn, plan, targets, run_id)
        finally:
            try:
                self.worker.close(conn)
            except psycopg.Error:  # the connection is gone: the claims lapse with the lease
                pass

    def _run_registered(self, conn: psycopg.Connection, plan: Plan, targets: dict[str, Target],
                        run_id: int) -> RunSummary:
        summary = RunSummary(run_id, self.pipeline, "succeeded")
        self.timings: dict[str, float] = {}
        self.rows_sent = 0  # rows sent to PostgreSQL so far (committed or not): for the progress bar
        entries: list[FileEntry] = []
        try:
            entries = self.selection.list(self.zone)
            pending = self._classify(conn, entries, summary)
            static = plan.run_static(provided_values(self.project)) if pending else {}
            if plan.filters:
                wanted = [e for e in pending if plan.wants(e.name, static) is None]
                summary.excluded = len(pending) - len(wanted)
                pending = wanted
            ctx = UnitContext(conn, plan, static, targets, run_id, summary)
            for chunk in self._claimed(conn, pending, summary):
                try:
                    loaded = ledger.loaded_content(conn, self.pipeline)  # other workers load meanwhile
                    self._load_all(ctx, chunk, loaded)
                finally:
                    self.worker.release(conn, [e.name for e in chunk])
            deadletters.settle(conn, self.pipeline, run_ok=not summary.count("failed"))
            summary.exports = self._export(conn, summary)
        except DatabaseUnavailable:  # nothing more can be recorded: the run is marked abandoned later
            raise
        except ChuteError as exc:
            summary.error = str(exc)
        except Exception as exc:  # a bug or an unforeseen failure: record it, never leave the run 'running'
            if conn.broken or conn.closed:  # the database went away: nothing more can be recorded
                raise
            summary.error = f"{type(exc).__name__}: {exc}"
        if summary.error or summary.count("failed"):
            summary.status = "failed"
        summary.timings = {k: round(v, 3) for k, v in self.timings.items()}
        details = {"timings": summary.timings, "tables": summary.tables, "worker": self.worker.id, **self.details}
        if summary.claimed_elsewhere or summary.interrupted:
            details.update(claimed_elsewhere=summary.claimed_elsewhere, interrupted=summary.interrupted)
        ledger.finish_run(conn, run_id, summary.status, len(entries), summary.error, details)
        return summary

    def _claimed(self, conn: psycopg.Connection, pending: list[FileEntry], summary: RunSummary
                 ) -> Iterator[list[FileEntry]]:
        """The pending files in chunks this worker claimed (a few at a time, so workers share
        the work), each checked again against the ledger now that it is ours."""
        i = 0
        while i < len(pending) and not self.stop.is_set():
            chunk, size = [], 0
            while i < len(pending) and len(chunk) < self.claim_files and (not chunk or size < self.unit_bytes):
                chunk.append(pending[i])
                size += pending[i].size
                i += 1
            mine = self.worker.claim(conn, [e.name for e in chunk])
            summary.claimed_elsewhere += len(chunk) - len(mine)
            ours = [e for e in chunk if e.name in mine]
            # Another worker may have settled some of these between our listing and our claim.
            fresh = self._classify(conn, ours, summary, names=[e.name for e in ours]) if ours else []
            if len(fresh) < len(ours):
                self.worker.release(conn, [e.name for e in ours if e not in fresh])
            if fresh:
                yield fresh
        if i < len(pending):
            summary.interrupted = True

    def _classify(self, conn: psycopg.Connection, entries: list[FileEntry], summary: RunSummary,
                  names: list[str] | None = None) -> list[FileEntry]:
        """Drop files the ledger already settled, judged by name, size and mtime (no hashing).
        Failed versions are tried again when asked, when their failure was transient (under
        [watch] max_attempts) or when their dead letter was re-queued; a resolved one (chute
        forget) only when asked."""
        known = ledger.known_files(conn, self.pipeline, names)
        due = deadletters.due_again(conn, self.pipeline, self.max_attempts)
        pending = []
        for e in entries:
            same = [k for k in known.get(e.name, ()) if k.size == e.size and k.mtime_ns == e.mtime_ns]
            if any(k.status != "failed" for k in same):
                summary.unchanged += 1
            elif same and not self.retry_failed and not any((e.name, k.sha256) in due for k in same):
                if all(k.resolved for k in same):  # a person gave up on it (chute forget): left alone
                    summary.unchanged += 1
                else:
                    summary.still_failed.append(e.name)
            else:
                pending.append(e)
        return pending

    # -- loading ---------------------------------------------------------------------------
    def _load_all(self, ctx: UnitContext, pending: list[FileEntry], loaded: dict[str, tuple[int, str]]) -> None:
        """Load the pending files, one transaction per `unit_bytes` of input.

        Files are read in groups of `batch_mb` on worker threads, one group ahead of the load,
        and each group's rows go into the open transaction as they come. If a unit fails, it
        is rolled back and its groups are loaded again one by one, isolating bad files.
        """
        load_conn = self.kept.loader(self.db_url) if self.kept else connect_loader(self.db_url)
        ctx = replace(ctx, load_conn=load_conn, seen={sha: list(twins) for sha, twins in loaded.items()})
        clean = False
        try:
            with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as readers, ThreadPoolExecutor(1) as ahead:
                stream = self._settled(ctx, list(self._groups(pending)), readers, ahead)
                while True:
                    taken: list[list[_Ready]] = []
                    try:
                        self._load_unit(ctx, self._take(stream, taken))
                    except (FileError, DatabaseError) as exc:
                        if load_conn.broken or load_conn.closed or ctx.conn.broken:  # not the files' fault
                            raise database_lost(self.db_url, exc) from None
                        for ready in taken:  # the frames were freed: read the files again
                            for item in ready:
                                twins = ctx.seen.get(item.sha256, [])
                                twins[:] = [t for t in twins if t[1] != item.entry.name]
                            again = self._settle(ctx, [self._read(item.entry) for item in ready])
                            if again:
                                self._load_group(ctx, again)
                    if not taken:
                        break
            clean = True
        finally:
            if self.kept:
                self.kept.give_loader(self.db_url, load_conn, clean and not ctx.summary.count("failed"))
            else:
                load_conn.close()

    def _take(self, stream: Iterator[list[_Ready]], taken: list[list[_Ready]]) -> Iterator[list[_Ready]]:
        """Groups from the stream until one unit's worth of input has been taken."""
        size = 0
        for ready in stream:
            taken.append(ready)
            yield ready
            size += sum(item.entry.size for item in ready)
            if size >= self.unit_bytes:
                return

    def _settled(self, ctx: UnitContext, groups: list[list[FileEntry]], readers: Executor, ahead: Executor
                 ) -> Iterator[list[_Ready]]:
        """Each group's loadable files; unreadable and duplicate files are recorded on the way."""
        def read_group(group: list[FileEntry]) -> list[_Ready]:
            if len(group) > 1 and self.source.format == "csv":
                return self._read_together(group, readers)
            return list(readers.map(lambda entry: self._read(entry, readers), group))

        upcoming = ahead.submit(read_group, groups[0]) if groups else None
        for i in range(len(groups)):
            t0 = time.perf_counter()
            results = upcoming.result()
            self._time("read (waiting)", t0)
            if i + 1 < len(groups):
                upcoming = ahead.submit(read_group, groups[i + 1])
            if ready := self._settle(ctx, results):
                yield ready
            done = sum(len(g) for g in groups[:i + 1])
            self.progress(done, sum(map(len, groups)), self.rows_sent)

    def _settle(self, ctx: UnitContext, results: list[_Ready]) -> list[_Ready]:
        """Record unreadable and duplicate files; return the ones to load (now marked seen)."""
        ready = []
        for item in results:
            if item.error is not None:
                self._failed(ctx, item.entry, item.sha256, item.error, retryable=item.retryable)
            elif item.digest is None and item.sha256 in ctx.seen and \
                    (twin := self._twin(ctx, item, item.frame, ctx.seen[item.sha256])) is not None:
                self._duplicate(ctx, item, twin)
            else:
                if item.digest is None:  # else marked seen once hashed (_check_content)
                    ctx.seen.setdefault(item.sha256, []).append((None, item.entry.name))
                ready.append(item)
        return ready

    def _twin(self, ctx: UnitContext, item: _Ready, frame: pl.DataFrame | None,
              twins: list[tuple[int | None, str]]) -> tuple[int | None, str] | None:
        """Which file loaded (or in hand) with the same content `item` duplicates, or None: load it.

        [source] same_content: `skip` takes any; `load` none (but the same name); `auto`
        (default) one whose name makes no difference to the rows: the nodes are run on the
        file's rows (`frame`; a streamed file's first block) under its own name and under the
        twin's, and the outputs compared. The stocks example takes the company from the name:
        aav.us.txt and ajg.us.txt with the same bytes both load; again/aav.us.txt does not."""
        same_name = next((t for t in twins if t[1] == item.entry.name), None)
        policy = self.source.same_content
        if same_name is not None or policy == "skip":
            return same_name or twins[0]
        if policy == "auto":
            try:
                frame = self._first_block(item.entry) if frame is None else frame
                if not frame.height:  # no rows: nothing to load twice (each empty file is recorded loaded)
                    raise LookupError
                own = self._outputs(ctx, frame, item.entry.name)
                for twin in twins:
                    if self._outputs(ctx, frame, twin[1]) == own:
                        return twin
            except Exception:  # no rows, or a node that fails on one of the names: load it (a failure is recorded)
                pass
        item.by_name = True
        return None

    def _first_block(self, entry: FileEntry) -> pl.DataFrame:
        """The first block of rows of a big file (as _frames streams it), for _twin."""
        from chute.formats.reader import read_source
        from chute.formats.salvage import numbered

        data = self.zone.local_path(entry) or (lambda: self.zone.open(entry))
        blocks = numbered(read_source(data, self.source, self.batch_bytes, []))
        try:
            return next(blocks)
        finally:
            blocks.close()

    def _outputs(self, ctx: UnitContext, frame: pl.DataFrame, name: str) -> list[pl.DataFrame]:
        """The nodes' output tables for `frame` read under file name `name` (lineage columns left
        out, as the gate leaves them out of the tables), for _twin's comparison."""
        from chute.formats.salvage import ROW_COLUMN

        values = ctx.plan.run_batch(frame.with_columns(pl.lit(name).alias(self.source.file_column)), ctx.static, {})
        internal = {self.source.file_column, ROW_COLUMN}
        out = []
        for table in ctx.targets:
            result = as_frame(values[table], table)
            out.append(_Comparable(result.drop([c for c in result.columns if c in internal])))
        return out

    def _groups(self, pending: list[FileEntry]) -> Iterator[list[FileEntry]]:
        """Small files in groups of up to GROUP_BYTES (or `batch_mb`). The first group is smaller
        (FIRST_GROUP): the first COPY waits for it to be read, and meanwhile the server has
        nothing to do."""
        group: list[FileEntry] = []
        size = 0
        limit = min(FIRST_GROUP, self.batch_bytes)
        for e in pending:
            if e.size > self.batch_bytes:
                yield [e]
                continue
            if group and size + e.size > limit:
                yield group
                group, size = [], 0
                limit = min(2 * limit, GROUP_BYTES, self.batch_bytes)
            group.append(e)
            size += e.size
        if group:
            yield group

    def _read(self, entry: FileEntry, hashing: Executor | None = None) -> _Ready:
        """Hash and (for small files) parse one file. Runs on a worker thread: no database here.

        A big file is streamed at load time. Given `hashing`, it is hashed there meanwhile, so
        its rows start flowing at once (_check_content refuses known content before commit)."""
        if entry.size <= self.batch_bytes:
            content = self._content(entry)
            return content if isinstance(content, _Ready) else self._parsed(entry, *content)
        try:
            if hashing is not None:
                return _Ready(entry, "", None, digest=hashing.submit(self._digest, entry))
            return _Ready(entry, self._digest(entry), None)
        except OSError as exc:
            return _unreadable(entry, exc)

    def _content(self, entry: FileEntry) -> tuple[pa.Buffer, str] | _Ready:
        """A small file's bytes and their sha256, or why it cannot be read."""
        try:
            data = self.zone.read(entry)
        except OSError as exc:
            return _unreadable(entry, exc)
        return data, hashlib.sha256(data).hexdigest()

    def _read_together(self, group: list[FileEntry], readers: Executor) -> list[_Ready]:
        """A group of small CSV files: those plain enough are parsed as one text (formats/csv.py:
        read_together), the others one by one."""
        import numpy as np

        from chute.formats.csv import read_together
        from chute.formats.salvage import ROW_COLUMN

        contents = list(readers.map(self._content, group))
        readable = [i for i, c in enumerate(contents) if not isinstance(c, _Ready)]
        together = read_together([contents[i][0] for i in readable], self.source)
        results: list[_Ready | None] = [c if isinstance(c, _Ready) else None for c in contents]
        if together:
            chosen, rows, counts = together
            chosen = [readable[i] for i in chosen]
            which = np.repeat(np.arange(len(chosen)), counts)
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            rows = rows.with_columns(
                pl.Series(ROW_COLUMN, np.arange(1, rows.height + 1) - starts),  # from 1 in each file
                pl.Series(self.source.file_column, [group[i].name for i in chosen]).gather(which))
            offset = 0
            for i, count in zip(chosen, counts):
                results[i] = _Ready(group[i], contents[i][1], rows.slice(offset, count), batch=rows)
                offset += count
        alone = [i for i, r in enumerate(results) if r is None]
        for i, ready in zip(alone, readers.map(lambda i: self._parsed(group[i], *contents[i]), alone)):
            results[i] = ready
        return results

    def _parsed(self, entry: FileEntry, data: pa.Buffer, sha: str) -> _Ready:
        """A small file's rows, parsed from its bytes."""
        from chute.formats.reader import read_records

        try:  # the records the reader refuses are quarantined, the others load
            frame, rejects = read_records(data, self.source, self.batch_bytes)
        except FileError as exc:
            return _Ready(entry, sha, None, str(exc))
        return _Ready(entry, sha, frame.with_columns(pl.lit(entry.name).alias(self.source.file_column)), None,
                      rejects=rejects)

    def _digest(self, entry: FileEntry) -> str:
        """sha256 of a big file, read in blocks (from disk, or streamed from S3)."""
        digest = hashlib.sha256()
        with self.zone.open(entry) as f:
            while block := f.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def _duplicate(self, ctx: UnitContext, item: _Ready, first: tuple[int | None, str]) -> None:
        first_id, first_name = first
        if first_name == item.entry.name:  # the same file with the same bytes, only re-touched or re-uploaded
            ledger.touch(ctx.conn, self.pipeline, item.entry, item.sha256)
            ctx.summary.unchanged += 1
            return
        ledger.record_outcome(ctx.conn, ledger.LedgerRow.of(self.pipeline, ctx.run_id, item.entry, item.sha256,
                                                            "skipped"),
                              duplicate_of=first_id, error=f"same content as {first_name}, already loaded")
        ctx.summary.files.append(FileOutcome(item.entry.name, "skipped", error=f"same content as {first_name}"))

    def _load_group(self, ctx: UnitContext, ready: list[_Ready]) -> None:
        """One group in its own transaction; if it fails, each of its files alone."""
        from chute.load.unit import is_duplicate_key

        try:
            try:
                self._load_unit(ctx, [ready])
            except DatabaseError as exc:
                if not is_duplicate_key(exc):
                    raise
                # Rows copied straight into an empty merge table repeated a key: merge through the stage.
                self._load_unit(ctx, [ready], direct=False)
        except (FileError, DatabaseError) as exc:
            if ctx.load_conn.broken or ctx.load_conn.closed:  # the database went away, not the file's fault
                raise database_lost(self.db_url, exc) from None
            if len(ready) == 1:
                if isinstance(exc, _SameContent):
                    ready[0].sha256, first = exc.sha256, exc.first
                else:
                    twins = ledger.loaded_content(ctx.conn, self.pipeline).get(ready[0].sha256) \
                        if ledger.CONTENT_INDEX in str(exc) else None
                    first = twins[0] if twins else None
                if first:  # another worker loaded the same content (under another name) meanwhile
                    self._duplicate(ctx, ready[0], first)
                else:
                    self._failed(ctx, ready[0].entry, ready[0].sha256, str(exc), retryable=is_transient(exc))
                return
            for item in ready:  # isolate the bad file(s)
                self._load_group(ctx, [item])

    def _load_unit(self, ctx: UnitContext, groups: Iterable[list[_Ready]], direct: bool = True) -> None:
        """Rows of every file in `groups`, their ledger rows and the run counters: one transaction."""
        from chute.load.unit import LoadUnit
        from chute.quality.gate import Gate

        plan, static, targets, run_id = ctx.plan, ctx.static, ctx.targets, ctx.run_id
        unit = LoadUnit(ctx.load_conn, self.pipeline, run_id, allow_direct=direct)
        gate = Gate(self.contracts, self.source, unit)
        hooks = CommitHooks(self.hooks)
        per_file_loaded = gate.loaded
        rows_read: dict[str, int] = {}
        files: list[ledger.LedgerRow] = []
        with undone_on_failure(unit, hooks, gate, targets):
            taken_groups: list[list[_Ready]] = []
            for ready in groups:
                taken_groups.append(ready)
                for item in ready:
                    rows_read[item.entry.name] = item.frame.height if item.frame is not None else 0
                    gate.parse_rejects(item.entry.name, item.rejects)
                first_block = None
                for frame in self._frames(ready):
                    if ready[0].frame is None:  # streamed: count as the blocks go by
                        rows_read[ready[0].entry.name] += frame.height
                        first_block = frame if first_block is None else first_block
                    if not frame.height:  # a file with no rows (a header only) gives no rows: no node runs
                        continue
                    t0 = time.perf_counter()
                    values = plan.run_batch(frame, static, self.timings)
                    self._time("transform", t0)
                    t0 = time.perf_counter()
                    only_file = ready[0].entry.name if len(ready) == 1 else None
                    for table, target in targets.items():
                        # Drift policy, types and the table's contract; rejected rows stay in the gate.
                        conformed = gate.check(as_frame(values[table], table), target, only_file)
                        unit.write(target, conformed)
                        hooks.rows(table, conformed)
                        self.rows_sent += conformed.height
                    self._time("load", t0)
                    self._check_content(ctx, ready[0], first_block, wait=False)
                self._check_content(ctx, ready[0], first_block, wait=True)
                if ready[0].frame is None and ready[0].rejects:  # streamed: the reader refused these lines
                    gate.parse_rejects(ready[0].entry.name, ready[0].rejects)
                for item in ready:
                    e = item.entry
                    gate.enforce(e.name, rows_read[e.name])
                    files.append(ledger.LedgerRow.of(self.pipeline, run_id, e, item.sha256, "loaded",
                                                     rows_read=rows_read[e.name] + len(item.rejects),
                                                     rows_loaded=per_file_loaded.get(e.name, 0),
                                                     rows_rejected=gate.rejected.get(e.name, 0),
                                                     by_name=item.by_name))
                    item.frame = item.batch = None  # written: free it now (a failed unit reads the file again)
            if not files:
                return
            if any(f.rows_rejected for f in files):
                where = {i.entry.name: self.zone.local_path(i.entry) for ready in taken_groups for i in ready}
                unit.reject(gate.records([(f.name, f.sha256) for f in files], where.__getitem__))
            if not per_file_loaded and unit.rows_written:  # the nodes dropped the file column: exact per file only when alone
                for f in files:
                    f.rows_loaded = unit.rows_written if len(files) == 1 else None
                if len(files) > 1:
                    ctx.summary.rows_by_file = False
            t0 = time.perf_counter()
            hooks.commit(unit, files)
            self._time("commit", t0)
            for table, rows in unit.written.items():
                ctx.summary.tables[table] = ctx.summary.tables.get(table, 0) + rows
            ctx.summary.created_tables.update(gate.created)
        ctx.summary.files.extend(FileOutcome.of(f) for f in files)

    def _check_content(self, ctx: UnitContext, item: _Ready, first_block: pl.DataFrame | None, wait: bool) -> None:
        """Once a streamed file's hash is known (`wait`: wait for it), refuse content already
        loaded (unless its name makes other rows: _twin, on its first block): _SameContent rolls
        the unit back and the file is recorded as a duplicate."""
        if item.digest is None or not (wait or item.digest.done()):
            return
        try:
            sha = item.digest.result()
        except OSError as exc:
            raise FileError(f"cannot read the file: {exc.strerror or exc}") from None
        item.digest = None
        if sha in ctx.seen and (twin := self._twin(ctx, item, first_block, ctx.seen[sha])) is not None:
            raise _SameContent(sha, twin)
        item.sha256 = sha
        ctx.seen.setdefault(sha, []).append((None, item.entry.name))

    def _frames(self, ready: list[_Ready]) -> Iterator[pl.DataFrame]:
        from chute.formats.reader import read_source
        from chute.run.prefetch import read_ahead
        from chute.formats.salvage import numbered

        if len(ready) == 1 and ready[0].frame is None:  # a big file: stream it
            entry = ready[0].entry
            lit = pl.lit(entry.name).alias(self.source.file_column)
            data = self.zone.local_path(entry) or (lambda: self.zone.open(entry))
            # The next block is parsed on a thread while this one is transformed and copied.
            ready[0].rejects = []
            for frame in read_ahead(numbered(read_source(data, self.source, self.batch_bytes, ready[0].rejects))):
                yield frame.with_columns(lit)
            return
        rest = [r for r in ready if r.frame is not None]
        batch = next((r.batch for r in rest if r.batch is not None), None)
        # Files read together are loaded as the one frame they were read into, unless some of
        # them dropped out (duplicates): then each one's slice goes, as other files' frames do.
        if batch is not None and sum(r.frame.height for r in rest if r.batch is batch) == batch.height:
            yield batch
            rest = [r for r in rest if r.batch is not batch]
        if rest:
            frames = [r.frame for r in rest]
            yield pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]

    def _failed(self, ctx: UnitContext, entry: FileEntry, sha: str, message: str, retryable: bool = False) -> None:
        row = ledger.LedgerRow.of(self.pipeline, ctx.run_id, entry, sha or "unread", "failed")
        ledger.record_outcome(ctx.conn, row, error=message)
        ctx.summary.files.append(FileOutcome(entry.name, "failed", error=message))
        if deadletters.after_failure(ctx.conn, self.pipeline, entry.name, sha or "unread", message,
                                     retryable=retryable, max_attempts=self.max_attempts):
            ctx.summary.dead_letters += 1

    def _time(self, stage: str, t0: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    # -- after the loads -------------------------------------------------------------------
    def _export(self, conn: psycopg.Connection, summary: RunSummary) -> list[str]:
        """Rewrite each table's export CSV (export.py), when this run loaded rows."""
        if not summary.count("loaded"):
            return []
        written = []
        for name, (key, path) in self._export_files().items():
            t0 = time.perf_counter()
            how = write_export(conn, self.pipeline, self.project.tables[name].schema_, name, key, path,
                               self.export_rows)
            self._time("export from memory" if how == "memory" else "export", t0)
            written.append(str(path))
        return written

    def _export_files(self) -> dict[str, tuple[list[str], Path]]:
        return {name: (table.primary_key, self.project.path(table.export))
                for name, table in self.project.tables.items() if table.export}


class _Comparable:
    """A frame that compares by value (nulls equal), for _twin."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Comparable) and self.frame.equals(other.frame)


def _unreadable(entry: FileEntry, exc: OSError) -> _Ready:
    return _Ready(entry, "", None, f"cannot read the file: {exc.strerror or exc}", retryable=True)

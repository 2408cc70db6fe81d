"""Extraction: pull rows from a database or an API into the landing zone as part files.

    run_extract(project, name)   one `[extract.NAME]`: parts written, then the watermark moved
    run_extracts(project)        every extraction (or the names given), each on its own

Each kind lives in its own module with one function, `extract(job: ExtractJob) -> watermark`:
it writes parts through `job.writer` (parts.PartWriter) and returns the new watermark (a JSON
value), or None to leave it as it was. The files are ordinary landing files: `chute run` and
`chute watch` load them through the ledger exactly once.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chute.ledger import schema
from chute.errors import ChuteError, ConfigError, RunInProgress
from chute.ledger import watermarks
from chute.config.extract import DatabaseExtract, Extract, ExtractBase, Extracts, HttpExtract

if TYPE_CHECKING:
    from chute.config.project import Project
    from chute.extract.parts import PartWriter

__all__ = ["ExtractJob", "ExtractReport", "run_extract", "run_extracts", "DatabaseExtract", "HttpExtract",
           "Extract", "ExtractBase", "Extracts"]

KINDS = {"database": "chute.extract.database", "http": "chute.extract.http"}


@dataclass
class ExtractReport:
    name: str
    kind: str
    files: list[str] = field(default_factory=list)  # written, relative to the landing zone
    rows: int = 0
    watermark_before: Any = None
    watermark_after: Any = None
    seconds: float = 0.0
    error: str | None = None
    backfill: bool = False  # --since/--until: the watermark was left alone
    keyed_watermarks: dict[str, Any] = field(default_factory=dict)  # a fan-out's keys whose watermark moved

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExtractJob:
    """What a kind's extract() gets: the spec, where to write, and where the last run ended."""
    project: "Project"
    name: str
    spec: ExtractBase
    writer: PartWriter
    watermark: Any  # None before the first run
    since: str | None = None  # backfill bounds as given (the kind parses them for its cursor)
    until: str | None = None
    started_at: datetime | None = None
    warehouse_url: str | None = None  # the target database's URL (a source may live on the same server)
    keys: list[dict] | None = None  # for_each = "message": the rows of a chain message (chute.chain)
    # A fan-out's watermarks, one per for_each row (watermarks.key_name): read before the run;
    # `moved` holds the new ones, saved with the rest when the run ends without error.
    keyed: dict[str, Any] = field(default_factory=dict)
    moved: dict[str, Any] = field(default_factory=dict)

    def watermark_of(self, row: dict[str, Any]) -> Any:
        """Where this for_each row's last run ended (the extraction's own watermark without a row)."""
        return self.keyed.get(watermarks.key_name(self.name, row)) if row else self.watermark

    def advance(self, row: dict[str, Any], value: Any) -> None:
        if row:
            self.moved[watermarks.key_name(self.name, row)] = value

    @property
    def backfill(self) -> bool:
        return self.since is not None or self.until is not None


def run_extract(project: "Project", name: str, *, since: str | None = None, until: str | None = None,
                db_url: str | None = None, keys: list[dict] | None = None, wait: float = 0.0,
                stop: "threading.Event | None" = None) -> ExtractReport:
    """Run one extraction. Errors of the source are in the report (error); the parts written
    before them stay (valid rows; a rerun writes them again with the same bytes).

    One extraction of a name runs at a time (its parts would share names): when another holds
    it, wait up to `wait` seconds (chain consumers of one stage take turns), then RunInProgress."""
    spec = project.extract.get(name)
    if spec is None:
        known = ", ".join(sorted(project.extract)) or "none configured"
        raise ConfigError(f"no extraction named {name!r} in chute.toml (known: {known})")
    from chute.db.postgres import connect
    from chute.db.resolve import resolve_database

    db_url = db_url or resolve_database(project, None, project.root)
    conn = connect(db_url)
    try:
        schema.ensure_schema(conn)
        if not watermarks.lock(conn, project.name, name, wait=wait, stop=stop):
            raise RunInProgress(f"extraction {name!r} is already running")
        try:
            return _run_locked(conn, project, name, spec, since=since, until=until, db_url=db_url, keys=keys)
        finally:
            watermarks.unlock(conn, project.name, name)
    finally:
        conn.close()


def _run_locked(conn, project, name, spec, *, since, until, db_url, keys=None) -> ExtractReport:
    t0 = time.perf_counter()
    before = watermarks.get(conn, project.name, name)
    report = ExtractReport(name, spec.kind, watermark_before=before, watermark_after=before,
                           backfill=since is not None or until is not None)
    from chute.extract.parts import PartWriter, now_utc  # here, not at the top: chute.toml's models import this package

    started_at = now_utc()
    writer = PartWriter(project, spec, started_at, naive_zone=getattr(spec, "timezone", "UTC"))
    job = ExtractJob(project, name, spec, writer, before, since, until, started_at, db_url, keys,
                     keyed=watermarks.keyed(conn, project.name, name))
    try:
        after = importlib.import_module(KINDS[spec.kind]).extract(job)
        # A backfill re-reads a past window: the watermark never moves for it (not even forward,
        # which would skip the rows between the old watermark and the window).
        if not job.backfill:
            if after is not None:
                watermarks.set(conn, project.name, name, after)
                report.watermark_after = after
            for key, value in job.moved.items():
                watermarks.set(conn, project.name, key, value)
            report.keyed_watermarks = dict(job.moved)
    except ChuteError as exc:
        report.error = str(exc)
    report.files, report.rows = list(writer.files), writer.rows
    report.seconds = round(time.perf_counter() - t0, 3)
    watermarks.record_run(conn, project.name, name, started_at=started_at, rows=report.rows,
                          files=len(report.files), seconds=report.seconds, error=report.error)
    return report


def run_extracts(project: "Project", names: list[str] | None = None, *, since: str | None = None,
                 until: str | None = None, db_url: str | None = None) -> list[ExtractReport]:
    """The named extractions (default: all, in name order); one failing does not stop the others."""
    chosen = list(names) if names else sorted(project.extract)
    unknown = [n for n in chosen if n not in project.extract]
    if unknown:
        known = ", ".join(sorted(project.extract)) or "none configured"
        raise ConfigError(f"no extraction named {', '.join(map(repr, unknown))} in chute.toml (known: {known})")
    return [run_extract(project, n, since=since, until=until, db_url=db_url) for n in chosen]

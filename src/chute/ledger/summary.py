"""What a run reports: its files' outcomes and its counters (shared by the run, the chain, the
watch service, the AWS handlers and the notifications, so it lives low, as dlt keeps LoadInfo)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chute.ledger.files import LOADED_STATES, LedgerRow


@dataclass
class FileOutcome:
    name: str
    status: str  # loaded | loaded_with_rejects | failed | skipped
    rows_read: int | None = None
    rows_loaded: int | None = None
    error: str | None = None
    rows_rejected: int = 0

    @classmethod
    def of(cls, row: LedgerRow) -> FileOutcome:
        """A loaded file's outcome, from the ledger row its load wrote."""
        return cls(row.name, row.status, row.rows_read, row.rows_loaded, rows_rejected=row.rows_rejected)


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
    claimed_elsewhere: int = 0  # being processed by another worker right now
    interrupted: bool = False  # asked to stop: the files not started are left for the next run
    dead_letters: int = 0  # files of this run that became dead letters (chute dlq list)
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    log: str | None = None  # where the run's JSON log was written (chute.runlog)
    notifications: list[dict] = field(default_factory=list)  # what each [[notify]] entry did
    # chute.chain: a following stage's run (messages claimed, acknowledged, failed); the AWS load (published)
    chain: dict | None = None
    pending_rejects: int = 0  # chute load of an unchanged file: its quarantined records waiting for --replay
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table (committed)
    # False when some loaded file's rows could not be counted alone: the nodes dropped source_file
    # and the file was loaded together with others (its chute.files.rows_loaded is NULL).
    rows_by_file: bool = True
    schema: dict | None = None  # chute load: the table's columns, types, NULLs, markers and formats (formats/infer.py)

    def count(self, status: str) -> int:
        """Files in that state; 'loaded' includes those loaded with rejects."""
        if status == "loaded":
            return sum(f.status in LOADED_STATES for f in self.files)
        return sum(f.status == status for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_loaded(self) -> int:
        """Rows written into the tables, all tables together (per table: `tables`)."""
        if self.tables:
            return sum(self.tables.values())
        return sum(f.rows_loaded or 0 for f in self.files)

    @property
    def without_rows(self) -> list[str]:
        """Files loaded with no data rows (a header only; an empty file under [source] empty_files = "load")."""
        return [f.name for f in self.files if f.status in LOADED_STATES and f.rows_read == 0]

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(files_loaded=self.count("loaded"), files_failed=self.count("failed"),
                    files_skipped=self.count("skipped"), rows_loaded=self.rows_loaded,
                    files_with_rejects=self.count("loaded_with_rejects"), rows_rejected=self.rows_rejected,
                    files_without_rows=self.without_rows)
        return data

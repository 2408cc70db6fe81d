"""What a trigger scopes a run to: a Selection of the landing zone's files.

Triggers (watch/, chain/) and the command line build one; the Runner applies it to the zone
(run/runner.py). An empty Selection() is the whole zone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chute.sources.base import FileEntry, LandingZone
from chute.sources.partitions import Window, list_window


@dataclass(frozen=True)
class Selection:
    # Just these names (None: every name) / names under this prefix.
    only: frozenset[str] | None = None
    prefix: str | None = None
    skip: frozenset[str] = frozenset()  # names known to be still being written
    # A time window: only files of partition folders in it, other folders pruned by path
    # (chute run --start-ts/--end-ts).
    window: Window | None = None
    # Whole-zone runs of `chute watch` leave files changed less than min_age seconds ago (they
    # may still be written; their own close event starts a run), unless an event confirmed
    # them complete.
    min_age: float = 0.0
    confirmed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Callers pass any iterable of names (an empty `only` selects nothing); kept as frozensets.
        if self.only is not None and not isinstance(self.only, frozenset):
            object.__setattr__(self, "only", frozenset(self.only))
        for name in ("skip", "confirmed"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    def list(self, zone: LandingZone) -> list[FileEntry]:
        """The zone's files in this selection (a window prunes folders before they are listed)."""
        return self.filter(zone.list() if self.window is None else list_window(zone, self.window))

    def filter(self, entries: list[FileEntry], now_ns: int | None = None) -> list[FileEntry]:
        """The entries this selection keeps (the window is applied by listing: see list)."""
        cutoff = (now_ns if now_ns is not None else time.time_ns()) - int(self.min_age * 1e9)
        return [e for e in entries
                if (self.only is None or e.name in self.only)
                and (not self.prefix or e.name.startswith(self.prefix))
                and e.name not in self.skip
                and (not self.min_age or e.mtime_ns <= cutoff or e.name in self.confirmed)]

"""What every landing zone provides: a listing and the bytes of a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

# Editors, browsers and copy tools write these while a file is still incomplete.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", ".filepart")


@dataclass(frozen=True)
class FileEntry:
    name: str  # path relative to the zone, '/'-separated: the file's identity in the ledger
    uri: str  # where it is, for people
    size: int
    mtime_ns: int
    location: str  # what the zone needs to open it


def is_ignored(name: str) -> bool:
    return name.startswith((".", "~")) or name.endswith(_PARTIAL_SUFFIXES)


class LandingZone(Protocol):
    def list(self) -> list[FileEntry]: ...

    def read(self, entry: FileEntry) -> pa.Buffer: ...

    def local_path(self, entry: FileEntry) -> str:
        """A path on disk to stream a file too big to hold in memory."""
        ...

"""What every landing zone provides: a listing and the bytes of a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
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


def stored_name(name: str) -> str:
    """The name as text PostgreSQL can store. Bytes of a name that are not UTF-8 reach Python as
    lone surrogates, which no UTF-8 database takes (one such name used to fail the whole run);
    they are written as \\xe9, the same way every time, so the file keeps one identity in the
    ledger. The file is still opened by its real path (`location`)."""
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class LandingZone(Protocol):
    def list(self) -> list[FileEntry]: ...

    def read(self, entry: FileEntry) -> pa.Buffer: ...

    def open(self, entry: FileEntry) -> BinaryIO:
        """The file's bytes as a stream, to read a file too big to hold in memory in blocks."""
        ...

    def local_path(self, entry: FileEntry) -> str | None:
        """A path on disk (faster to stream than open()), or None when the file is not on this disk."""
        ...

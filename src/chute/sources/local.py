"""A landing zone on the local disk."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from chute.errors import LandingZoneError, setting
from chute.sources.base import FileEntry, is_ignored, stored_name

if TYPE_CHECKING:
    import pyarrow as pa


class LocalZone:
    def __init__(self, root: Path, patterns: list[str], recursive: bool = True, *, marker: str | None = None):
        self.root = root
        self.patterns = patterns
        self.recursive = recursive
        self.marker = marker  # when set, only files of folders holding this marker file (a batch) are listed

    def require_root(self) -> None:
        """A mistyped path would look like a zone with nothing new: say it is missing."""
        if not self.root.is_dir():
            raise LandingZoneError(f"the landing folder {self.root} does not exist; create it, or fix "
                                   f"{setting('path', section='landing')} in chute.toml")

    def list(self) -> list[FileEntry]:
        self.require_root()
        # Plain string work per file, not pathlib: a no-op run over 10,000 files spent most of
        # its listing time building Path objects.
        root = os.path.abspath(self.root)
        root_uri = Path(root).as_uri().rstrip("/") + "/"
        cut = len(root) + 1
        wanted = re.compile("|".join(fnmatch.translate(p) for p in self.patterns)).match
        entries: list[FileEntry] = []
        complete: set[str] = set()  # batch folders ('' = the root, else 'a/b/') holding the marker
        stack = [root]
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as it:
                for item in it:
                    if item.name == self.marker and item.is_file():
                        complete.add(folder[cut:].replace(os.sep, "/") + "/" if folder != root else "")
                        continue
                    if is_ignored(item.name):
                        continue
                    if item.is_dir(follow_symlinks=False):
                        if self.recursive:
                            stack.append(item.path)
                        continue
                    if not item.is_file() or not wanted(item.name):
                        continue
                    stat = item.stat()
                    name = item.path[cut:].replace(os.sep, "/")
                    entries.append(FileEntry(stored_name(name), root_uri + quote(os.fsencode(name)), stat.st_size,
                                             stat.st_mtime_ns, item.path))
        if self.marker is not None:  # a file belongs to a batch when its folder or one above holds the marker
            entries = [e for e in entries if any(e.name.startswith(done) for done in complete)]
        entries.sort(key=lambda e: e.name)
        return entries

    def read(self, entry: FileEntry) -> pa.Buffer:
        import pyarrow as pa  # here: listing a zone (a run with nothing new) never needs it

        with open(entry.location, "rb") as f:
            return pa.py_buffer(f.read())

    def open(self, entry: FileEntry) -> BinaryIO:
        return open(entry.location, "rb")

    def local_path(self, entry: FileEntry) -> str | None:
        return entry.location

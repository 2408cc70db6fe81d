"""A landing zone on the local disk."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from .base import FileEntry, is_ignored


class LocalZone:
    def __init__(self, root: Path, patterns: list[str], recursive: bool = True):
        self.root = root
        self.patterns = patterns
        self.recursive = recursive

    def list(self) -> list[FileEntry]:
        if not self.root.is_dir():
            return []
        entries: list[FileEntry] = []
        stack = [self.root]
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as it:
                for item in it:
                    if is_ignored(item.name):
                        continue
                    if item.is_dir(follow_symlinks=False):
                        if self.recursive:
                            stack.append(Path(item.path))
                        continue
                    if not item.is_file() or not any(fnmatch.fnmatch(item.name, p) for p in self.patterns):
                        continue
                    stat = item.stat()
                    name = Path(item.path).relative_to(self.root).as_posix()
                    entries.append(FileEntry(name, Path(item.path).as_uri(), stat.st_size, stat.st_mtime_ns, item.path))
        entries.sort(key=lambda e: e.name)
        return entries

    def read(self, entry: FileEntry) -> pa.Buffer:
        with open(entry.location, "rb") as f:
            return pa.py_buffer(f.read())

    def open(self, entry: FileEntry) -> BinaryIO:
        return open(entry.location, "rb")

    def local_path(self, entry: FileEntry) -> str | None:
        return entry.location

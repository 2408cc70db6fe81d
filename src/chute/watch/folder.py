"""A local landing folder watched with watchdog (inotify on Linux).

A file is taken only when it is complete:
- closed after writing (inotify IN_CLOSE_WRITE, which arrives within milliseconds), or
- moved (renamed) into the folder: a rename is atomic, the writer finished before it. A file
  moved in from outside the watched folder reaches us as "created" (inotify cannot pair the
  rename); a writer creating a file opens it in the same call, so a created file that nobody
  opened within MOVED_IN_GRACE seconds was moved (or linked) in, and is taken then; or
- its size stayed the same for `settle` seconds while no one had it open (writers whose
  close we cannot see, e.g. on a network mount without inotify events). A file seen opened
  and not yet closed is never taken by this rule: a slow writer is waited for.

Hidden and temporary names (`.x`, `~x`, `*.tmp`, `*.part`, ...: sources.base.is_ignored) and
names that match none of [landing] patterns are ignored, so "write to a temporary name,
then rename" works as it should. A writer that closes a file and opens it again to append
must use that pattern: its first close looks complete.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from chute.sources.base import is_ignored
from chute.watch.trigger import Emit, RunRequest, Trigger

log = logging.getLogger("chute.watch")

MOVED_IN_GRACE = 0.2  # seconds: IN_OPEN follows a writer's IN_CREATE at once, in the same batch of events


class FolderTrigger(Trigger):
    name = "folder"

    def __init__(self, root: Path, patterns: list[str], recursive: bool = True, settle: float = 2.0, *,
                 marker: str | None = None):
        self.root = Path(root).resolve()
        self.marker = marker  # batch mode: only this file landing starts a run, for its folder
        self.patterns = patterns
        self.recursive = recursive
        self.settle = settle
        self._lock = threading.Lock()
        self._growing: dict[str, tuple[int, float]] = {}  # name -> (size, when it last changed)
        self._opened: dict[str, int] = {}  # name -> opens seen minus closes seen (still open: > 0)
        self._created: dict[str, float] = {}  # name -> when "created" was seen, while no open has followed
        self._stopping = threading.Event()
        self._observer: Observer | None = None
        self._checker: threading.Thread | None = None
        self._emit: Emit | None = None

    def describe(self) -> str:
        return f"folder {self.root} ({', '.join(self.patterns)}; settle {self.settle:g}s)"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, emit: Emit) -> None:
        self._emit = emit
        self.root.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(_Handler(self), str(self.root), recursive=self.recursive)
        self._observer.start()
        self._checker = threading.Thread(target=self._check_growing, name="chute-settle", daemon=True)
        self._checker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None
        if self._checker is not None:
            self._checker.join()
            self._checker = None

    def incomplete(self) -> set[str]:
        """Names seen being written and not yet complete: a whole-zone run leaves them alone."""
        with self._lock:
            return set(self._growing)

    # -- events ----------------------------------------------------------------------------
    def _name(self, path: str) -> str | None:
        """The landing-zone name of `path`, or None when the file is not one chute takes."""
        try:
            relative = Path(path).resolve().relative_to(self.root)
        except ValueError:
            return None
        parts = relative.parts
        if not parts or any(is_ignored(p) for p in parts):
            return None
        if len(parts) > 1 and not self.recursive:
            return None
        if not any(fnmatch.fnmatch(parts[-1], p) for p in self.patterns):
            return None
        return relative.as_posix()

    def written(self, path: str) -> None:
        """Created or modified: complete only once its size settles (or it is closed)."""
        name = self._name(path)
        if name is None:
            return
        try:
            size = os.stat(path).st_size
        except OSError:
            return
        with self._lock:
            old = self._growing.get(name)
            if old is None or old[0] != size:
                self._growing[name] = (size, time.monotonic())

    def created(self, path: str) -> None:
        """A new name: written by someone (an open follows at once) or moved in from outside."""
        self.written(path)
        name = self._name(path)
        if name is not None:
            with self._lock:
                self._created[name] = time.monotonic()

    def opened(self, path: str, delta: int) -> None:
        name = self._name(path)
        if name is None:
            return
        with self._lock:
            self._created.pop(name, None)
            count = max(0, self._opened.get(name, 0) + delta)
            if count:
                self._opened[name] = count
            else:
                self._opened.pop(name, None)

    def complete(self, path: str, how: str) -> None:
        if self.marker is not None and os.path.basename(path) == self.marker:
            self._batch_done(path)
            return
        name = self._name(path)
        if name is None:
            return
        with self._lock:
            self._growing.pop(name, None)
            self._opened.pop(name, None)
            self._created.pop(name, None)
        if os.path.isfile(path):
            self._fire([name], how)

    def folder_moved_in(self, path: str) -> None:
        try:
            parts = Path(path).resolve().relative_to(self.root).parts
        except ValueError:
            return
        if self.recursive and parts and not any(is_ignored(p) for p in parts) and self._emit:
            self._emit(RunRequest(self.name, f"folder {'/'.join(parts)} moved in"))  # no names: the whole zone

    def _check_growing(self) -> None:
        while not self._stopping.wait(min(MOVED_IN_GRACE, self.settle / 4)):
            now = time.monotonic()
            ready, moved = [], []
            with self._lock:
                for name, since in list(self._created.items()):
                    if now - since >= MOVED_IN_GRACE:
                        del self._created[name]
                        if not self._opened.get(name) and (self.root / name).is_file():
                            self._growing.pop(name, None)
                            moved.append(name)
                for name, (size, since) in list(self._growing.items()):
                    path = self.root / name
                    try:
                        current = path.stat().st_size
                    except OSError:  # gone (deleted or renamed away)
                        del self._growing[name]
                        continue
                    if current != size or self._opened.get(name):
                        self._growing[name] = (current, now)
                    elif now - since >= self.settle:
                        del self._growing[name]
                        ready.append(name)
            if moved:
                self._fire(moved, "moved in")
            if ready:
                self._fire(ready, f"size unchanged for {self.settle:g}s")

    def _batch_done(self, marker_path: str) -> None:
        try:
            parts = Path(marker_path).resolve().parent.relative_to(self.root).parts
        except ValueError:
            return
        if any(is_ignored(p) for p in parts) or (parts and not self.recursive) or self._emit is None \
                or self._stopping.is_set():
            return
        folder = "/".join(parts) + "/" if parts else None
        self._emit(RunRequest("marker", f"batch marker landed in {folder or 'the landing folder'}", prefix=folder))

    def _fire(self, names: list[str], how: str) -> None:
        if self._emit is None or self._stopping.is_set() or self.marker is not None:
            return  # batch mode: the files of a batch wait for its marker
        log.debug("complete (%s): %s", how, ", ".join(names))
        self._emit(RunRequest(self.name, f"{len(names)} file(s) landed ({how})", names=tuple(names)))


class _Handler(FileSystemEventHandler):
    def __init__(self, trigger: FolderTrigger):
        self.trigger = trigger

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.trigger.created(_text(event.src_path))
        elif self.trigger.marker is not None:  # a marker written at once into a new folder can beat its watch
            marker = os.path.join(_text(event.src_path), self.trigger.marker)
            if os.path.isfile(marker):
                self.trigger.complete(marker, "found in a new folder")

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.trigger.written(_text(event.src_path))

    def on_opened(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.trigger.opened(_text(event.src_path), +1)

    def on_closed_no_write(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.trigger.opened(_text(event.src_path), -1)

    def on_closed(self, event: FileSystemEvent) -> None:  # closed after writing
        if not event.is_directory:
            self.trigger.complete(_text(event.src_path), "closed after writing")

    def on_moved(self, event: FileSystemEvent) -> None:
        if event.is_directory:  # a folder moved in: its files are complete; look at the whole zone
            self.trigger.folder_moved_in(_text(event.dest_path))
            return
        self.trigger.complete(_text(event.dest_path), "moved in")


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)

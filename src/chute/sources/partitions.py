"""Time-partitioned folders: `.../year=YYYY/month=MM/day=DD/hhmm=HHMM/file` (as `chute extract`
and ingestion Lambdas write them), and listing only the files of a time window.

A file's time is the start of the most precise partition above it (year, month, day, hour,
hhmm); it is in the window [start, end) when start <= time < end. Files under no year=
folder have no time and are in no window. Folders whose span cannot meet the window are
pruned by their path alone: neither listed nor read (on S3, one listing per folder kept,
with a delimiter, instead of one listing of the whole zone).
"""

from __future__ import annotations

import fnmatch
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chute.sources.base import FileEntry, LandingZone, is_ignored, stored_name

_SEGMENT = re.compile(r"^(year|month|day|hour|hhmm)=(\d{1,4})$")


def parse_time(text: str, option: str = "time") -> datetime:
    """An ISO date or time; without an offset it is UTC."""
    from chute.errors import ConfigError

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date or time (e.g. 2025-07-30 or 2025-07-30T14:00:00Z)") \
            from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def span(segments: list[str]) -> tuple[datetime, datetime] | None:
    """The time span [lo, hi) of a path's partition folders; None when it has no year= folder.
    Folders that do not parse as a date (month=13) give an empty span."""
    found: dict[str, int] = {}
    for segment in segments:
        m = _SEGMENT.match(segment)
        if m:
            found[m.group(1)] = int(m.group(2))
    if "year" not in found:
        return None
    try:
        if "hhmm" in found:
            hour, minute = divmod(found["hhmm"], 100)
            lo = datetime(found["year"], found.get("month", 1), found.get("day", 1), hour, minute, tzinfo=timezone.utc)
            return lo, lo + timedelta(minutes=1)
        if "hour" in found:
            lo = datetime(found["year"], found.get("month", 1), found.get("day", 1), found["hour"], tzinfo=timezone.utc)
            return lo, lo + timedelta(hours=1)
        if "day" in found:
            lo = datetime(found["year"], found.get("month", 1), found["day"], tzinfo=timezone.utc)
            return lo, lo + timedelta(days=1)
        if "month" in found:
            lo = datetime(found["year"], found["month"], 1, tzinfo=timezone.utc)
            year, month = (found["year"] + 1, 1) if found["month"] == 12 else (found["year"], found["month"] + 1)
            return lo, datetime(year, month, 1, tzinfo=timezone.utc)
        lo = datetime(found["year"], 1, 1, tzinfo=timezone.utc)
        return lo, datetime(found["year"] + 1, 1, 1, tzinfo=timezone.utc)
    except ValueError:
        epoch = datetime(1, 1, 1, tzinfo=timezone.utc)
        return epoch, epoch


class Window:
    """[start, end) in UTC; either side may be open."""

    def __init__(self, start: datetime | None, end: datetime | None):
        self.start, self.end = start, end

    def may_hold(self, segments: list[str]) -> bool:
        """Whether a folder with these path segments can hold a file of the window."""
        s = span(segments)
        if s is None:
            return True  # no time yet: look further down
        lo, hi = s
        return lo < hi and (self.end is None or lo < self.end) and (self.start is None or hi > self.start)

    def holds(self, name: str) -> bool:
        s = span(name.split("/")[:-1])
        if s is None or s[0] >= s[1]:
            return False
        t = s[0]
        return (self.start is None or t >= self.start) and (self.end is None or t < self.end)


def list_window(zone: LandingZone, window: Window) -> list[FileEntry]:
    """The zone's files in the window, pruning folders by path."""
    from chute.sources.local import LocalZone
    from chute.sources.s3 import S3Zone

    if isinstance(zone, LocalZone):
        entries = _local(zone, window)
    elif isinstance(zone, S3Zone) and not zone.marker:
        entries = _s3(zone, window)
    else:  # a zone type without folder listing (or marker batches): filter the full listing
        entries = zone.list()
    return sorted((e for e in entries if window.holds(e.name)), key=lambda e: e.name)


def _local(zone, window: Window) -> list[FileEntry]:
    zone.require_root()
    entries: list[FileEntry] = []
    stack: list[tuple[Path, list[str]]] = [(zone.root, [])]
    while stack:
        folder, segments = stack.pop()
        with os.scandir(folder) as it:
            for item in it:
                if is_ignored(item.name):
                    continue
                if item.is_dir(follow_symlinks=False):
                    if zone.recursive and window.may_hold([*segments, item.name]):
                        stack.append((Path(item.path), [*segments, item.name]))
                    continue
                if not item.is_file() or not any(fnmatch.fnmatch(item.name, p) for p in zone.patterns):
                    continue
                stat = item.stat()
                name = "/".join([*segments, item.name])
                entries.append(FileEntry(stored_name(name), Path(item.path).as_uri(), stat.st_size, stat.st_mtime_ns,
                                         item.path))
    return entries


def _s3(zone, window: Window) -> list[FileEntry]:
    from botocore.exceptions import BotoCoreError, ClientError

    from chute.errors import LandingZoneError, LandingZoneUnavailable
    from chute.retry import is_transient
    from chute.sources.s3 import describe_aws_error, mtime_ns_of

    entries: list[FileEntry] = []
    folders = [zone.prefix]
    paginator = zone.client.get_paginator("list_objects_v2")
    while folders:
        folder = folders.pop()
        try:
            pages = list(paginator.paginate(Bucket=zone.bucket, Prefix=folder, Delimiter="/"))
        except (BotoCoreError, ClientError) as exc:
            kind = LandingZoneUnavailable if is_transient(exc) else LandingZoneError
            raise kind(f"cannot list {zone.url}: {describe_aws_error(exc)}") from None
        for page in pages:
            for sub in page.get("CommonPrefixes", ()):
                key = sub["Prefix"]
                segments = key[len(zone.prefix):].strip("/").split("/")
                if zone.recursive and not key.startswith(zone.exclude) and not is_ignored(segments[-1]) \
                        and window.may_hold(segments):
                    folders.append(key)
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(zone.prefix):]
                base = name.rsplit("/", 1)[-1]
                if not base or is_ignored(base) or not any(fnmatch.fnmatch(base, p) for p in zone.patterns):
                    continue
                entries.append(FileEntry(name, zone.uri_of(name), obj["Size"],
                                         mtime_ns_of(obj["LastModified"], obj.get("ETag", "")), obj["Key"]))
    return entries


def window_option(start: str | None, end: str | None) -> Window | None:
    """--start-ts/--end-ts as a Window (None when neither is given)."""
    from chute.errors import ConfigError

    if start is None and end is None:
        return None
    window = Window(parse_time(start, "--start-ts") if start else None, parse_time(end, "--end-ts") if end else None)
    if window.start and window.end and window.start >= window.end:
        raise ConfigError("--start-ts must be before --end-ts")
    return window

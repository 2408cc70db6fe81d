"""One extraction run's output: part files in time-partitioned folders of the landing zone.

    <into>/year=YYYY/month=MM/day=DD/hhmm=HHMM/<name>_part<N>.<ext>

The time is the run's start in UTC (as ingestion Lambdas commonly name their folders), so every part
of one run sits in one folder and `chute run --start-ts/--end-ts` can pick runs by path.
Numbering continues after the parts already in that folder: two runs within the same minute
never overwrite each other's files.

A part becomes visible whole or not at all: on disk it is written to a hidden temporary file
(the landing zone ignores names starting with '.') and renamed into place; on S3 it is one
put_object. Timestamps are written in UTC.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from chute.errors import LandingZoneError

if TYPE_CHECKING:
    from chute.config.project import Project
    from chute.config.extract import ExtractBase

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


def partition_folder(into: str, started_at: datetime) -> str:
    """The run's folder: <into>/year=YYYY/month=MM/day=DD/hhmm=HHMM, from started_at in UTC."""
    if started_at.tzinfo is None:
        raise ValueError("started_at must be timezone-aware")
    t = started_at.astimezone(timezone.utc)
    return f"{into}/year={t:%Y}/month={t:%m}/day={t:%d}/hhmm={t:%H%M}"


def utc_timestamps(table: pa.Table, naive_zone: str = "UTC") -> pa.Table:
    """Every timestamp column as UTC: zoned ones converted, naive ones read as `naive_zone`."""
    columns = []
    changed = False
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type) and field.type.tz != "UTC":
            if field.type.tz is None:
                column = pc.assume_timezone(column, naive_zone, ambiguous="earliest", nonexistent="earliest") \
                    if naive_zone != "UTC" else column
            column = column.cast(pa.timestamp(field.type.unit, "UTC"))
            changed = True
        columns.append(column)
    if not changed:
        return table
    return pa.Table.from_arrays(columns, names=table.column_names)


def encode(table: pa.Table, file_format: str) -> bytes:
    """The bytes of one part. The same rows give the same bytes, so the ledger skips a re-extraction."""
    sink = io.BytesIO()
    if file_format == "parquet":
        import pyarrow.parquet as pq

        # Dictionaries only for top-level text columns: they pay off for repeated labels, while
        # for numbers and timestamps they cost a third of the encoding time and make the part
        # bigger. (Text inside lists and structs is written plain.)
        text = [f.name for f in table.schema if _is_text(f.type)]
        pq.write_table(table, sink, compression="zstd", use_dictionary=text)
    elif file_format == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sink)
    elif file_format == "jsonl":
        import polars as pl

        pl.from_arrow(table).write_ndjson(sink)
    else:
        raise ValueError(f"unknown format {file_format!r}")
    return sink.getvalue()


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_dictionary(t) or any(
        is_(t) for is_ in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                           pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view))


class PartWriter:
    """Writes an extraction run's parts into the project's landing zone (a folder or s3://)."""

    def __init__(self, project: "Project", spec: "ExtractBase", started_at: datetime, *, naive_zone: str = "UTC"):
        self.format = spec.file_format
        self.ext = EXTENSIONS[self.format]
        into = spec.into or ""
        self.base = into.rsplit("/", 1)[-1]
        self.folder = partition_folder(into, started_at)
        self.naive_zone = naive_zone
        self.files: list[str] = []  # names written, relative to the landing zone
        self.rows = 0
        landing = project.landing.path
        if landing.startswith("s3://"):
            from chute.sources.s3 import parse_s3_url, s3_client

            self.bucket, self.prefix = parse_s3_url(landing)
            self.client = s3_client()
            self.root = None
        else:
            self.root = project.landing_path
        self.next_part = self._first_free_part()

    def write(self, table: pa.Table) -> str:
        """Write one part; returns its name relative to the landing zone."""
        data = encode(utc_timestamps(table, self.naive_zone), self.format)
        name = f"{self.folder}/{self.base}_part{self.next_part}.{self.ext}"
        if self.root is not None:
            self._write_local(name, data)
        else:
            self._write_s3(name, data)
        self.next_part += 1
        self.files.append(name)
        self.rows += table.num_rows
        return name

    def _write_local(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)  # atomic: the zone sees the whole file or none
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise LandingZoneError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _write_s3(self, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise LandingZoneError(f"cannot write s3://{self.bucket}/{self.prefix}{name}: {exc}") from None

    def _first_free_part(self) -> int:
        """1, or one more than the highest part number already in this run's folder."""
        pattern = re.compile(rf"^{re.escape(self.base)}_part(\d+)\.{re.escape(self.ext)}$")
        if self.root is not None:
            folder = self.root / self.folder
            names = os.listdir(folder) if folder.is_dir() else []
        else:
            names = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}{self.folder}/")
            for page in pages:
                names += [item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", [])]
        numbers = [int(m.group(1)) for n in names if (m := pattern.match(n))]
        return max(numbers, default=0) + 1


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["PartWriter", "partition_folder", "utc_timestamps", "encode", "now_utc"]

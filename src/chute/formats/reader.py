"""One entry point for every format: a file's bytes (or local path) -> polars frames."""

from __future__ import annotations

import os
from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from chute.config.project import Source
from chute.errors import FileError, ReadError, settable, setting
from chute.formats.salvage import NoRecordParses, ParseReject, numbered, read_lenient, salvage_block


def read_source(data: pa.Buffer | str, source: Source, block_bytes: int = 64 << 20,
                rejects: list | None = None) -> Iterator[pl.DataFrame]:
    """Frames of one file (a buffer or a local path) in the format the project declares.

    Given a `rejects` list, readers refuse single bad records into it (ParseReject, with their
    line) instead of failing the whole file.
    """
    if _zero_bytes(data):
        if source.empty_files == "load":  # no rows, and the columns chute.toml declares
            return iter([pl.DataFrame(schema={name: pl.String for name in source.columns})])
        raise ReadError("the file is empty (0 bytes)" + (f"; set {setting('empty_files', 'load')} to load such "
                                                         "files with 0 rows" if settable("empty_files") else ""))
    if source.format == "jsonl":
        from chute.formats.jsonl import read_jsonl

        return read_jsonl(data, source, block_bytes, rejects)
    if source.format == "excel":
        from chute.formats.excel import read_excel

        return read_excel(data, source, block_bytes)
    if source.format == "parquet":
        from chute.formats.parquet import read_parquet

        return read_parquet(data, source, block_bytes)
    from chute.formats.csv import read_csv

    if rejects is None:
        return read_csv(data, source, block_bytes)
    return read_csv(data, source, block_bytes, rejects, salvage_block)


def _zero_bytes(data: pa.Buffer | str | object) -> bool:
    if isinstance(data, pa.Buffer):
        return data.size == 0
    if isinstance(data, (str, os.PathLike)):
        return os.path.getsize(data) == 0
    return False  # opened at read time (a big file on S3): not empty


def read_records(data: pa.Buffer, source: Source, block_bytes: int) -> tuple[pl.DataFrame, list[ParseReject]]:
    """A whole file's rows, numbered (ROW_COLUMN), and the records its reader refused. A CSV
    file the strict parse refuses is read record by record (read_lenient); FileError when
    nothing can be salvaged."""
    rejects: list[ParseReject] = []  # JSON lines: lines that are not JSON objects (refused one by one)
    try:
        frames = list(numbered(read_source(data, source, block_bytes, rejects)))
    except FileError as exc:
        if source.format != "csv" or isinstance(exc, NoRecordParses):  # a streamed block already said it all
            raise
        return read_lenient(data, source, exc)
    return (pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]), rejects

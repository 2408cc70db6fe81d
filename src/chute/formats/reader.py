"""One entry point for every format: a file's bytes (or local path) -> polars frames."""

from __future__ import annotations

import os
from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from chute.config.project import Source
from chute.errors import FileError, ReadError, settable, setting
from chute.formats.text import shaped
from chute.formats.salvage import NoRecordParses, ParseReject, numbered, read_lenient, salvage_block


def read_source(data: pa.Buffer | str, source: Source, block_bytes: int = 64 << 20,
                rejects: list | None = None) -> Iterator[pl.DataFrame]:
    """Frames of one file (a buffer or a local path) in the format the project declares, with
    only the [source] select columns (when given), renamed by [source] rename.

    Given a `rejects` list, readers refuse single bad records into it (ParseReject, with their
    line) instead of failing the whole file.
    """
    if _zero_bytes(data):
        if source.empty_files == "load":  # no rows, and the columns chute.toml declares
            return iter([pl.DataFrame(schema={name: pl.String for name in source.columns})])
        raise ReadError("the file is empty (0 bytes)" + (f"; set {setting('empty_files', 'load')} to load such "
                                                         "files with 0 rows" if settable("empty_files") else ""))
    frames = _read(data, source, block_bytes, rejects)
    if not source.select and not source.rename:
        return frames
    return (shaped(f, source.select, source.rename) for f in frames)


def _read(data: pa.Buffer | str, source: Source, block_bytes: int, rejects: list | None) -> Iterator[pl.DataFrame]:
    if source.format == "jsonl":
        from chute.formats.jsonl import read_jsonl

        return read_jsonl(data, source, block_bytes, rejects)
    if source.format == "json":
        from chute.formats.jsonl import read_json

        return read_json(data, source, block_bytes, rejects)
    if source.format == "excel":
        from chute.formats.excel import read_excel

        return read_excel(_whole(data, source), source, block_bytes)
    if source.format == "parquet":
        from chute.formats.parquet import read_parquet

        return read_parquet(_whole(data, source), source, block_bytes)
    from chute.formats.csv import read_csv

    if rejects is None:
        return read_csv(data, source, block_bytes)
    return read_csv(data, source, block_bytes, rejects, salvage_block)


def _whole(data, source: Source):
    """A workbook or a Parquet file is read whole (its index is at its end): a compressed one
    (gzip, bz2, xz, zstd) is decompressed, and checked, first. Others pass as they are."""
    from chute.formats.compress import detect_compression
    from chute.formats.csv import open_stream

    if callable(data) or source.compression == "none":
        return data
    if isinstance(data, pa.Buffer):
        head = data[:6].to_pybytes()
    else:
        with open(data, "rb") as f:
            head = f.read(6)
    if source.compression == "auto" and not detect_compression(head):
        return data
    stream = open_stream(data, source)
    try:
        return pa.py_buffer(stream.read())
    finally:
        stream.close()


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
        frame, rejects = read_lenient(data, source, exc)
        return shaped(frame, source.select, source.rename), rejects
    return (pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]), rejects

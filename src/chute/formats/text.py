"""Helpers over a file's bytes shared by the readers: counting bytes fast, numbering rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# Every frame read from a file carries this column: the record's position among the file's data
# records (1 = the first after the header); see salvage.py.
ROW_COLUMN = "source_row"


def shaped(frame: pl.DataFrame, select: list[str], rename: dict[str, str]) -> pl.DataFrame:
    """A file's frame with only the `select`ed columns (when given; chute's own columns, which
    start with `_chute` or are ROW_COLUMN, stay) and its columns renamed (the file's name ->
    the table's: formats/names.py)."""
    if select:
        wanted = set(select)
        frame = frame.select([c for c in frame.columns if c in wanted or c == ROW_COLUMN or c.startswith("_chute")])
    if rename:
        frame = frame.rename({k: v for k, v in rename.items() if k in frame.columns and k != v})
    return frame


def row_numbers(name: str, start: int, count: int) -> pl.Series:
    """start, start+1, ... as an Int64 column (eager: a lazy int_range costs ~0.1 ms a frame)."""
    return pl.Series(name, np.arange(start, start + count, dtype=np.int64))


def count_byte(data, byte: bytes, start: int = 0, end: int | None = None) -> int:
    """How often `byte` occurs in data[start:end]: numpy compares 1 MB at a time, 2.5-4x as
    fast as bytes.count (which also holds the GIL); counting lines and quotes of every block
    was ~5% of a big load's CPU."""
    view = np.frombuffer(data, np.uint8)[start:end]
    code = byte[0]
    return sum(int(np.count_nonzero(view[i:i + _SLICE] == code)) for i in range(0, len(view), _SLICE))


_SLICE = 1 << 20  # the comparison's temporary array stays small, in the cache and off the page allocator


@dataclass
class ParseReject:
    """A record a reader refused: kept for quarantine with its place in the file."""

    row_number: int
    line_number: int
    reason: str
    raw_record: str
    column: str | None = None
    value: str | None = None

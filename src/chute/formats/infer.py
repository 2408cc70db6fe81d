"""The schema of a file `chute load` creates a table for, from its first block (16 MB).

Two readings of the same bytes: pyarrow's own inference with the null markers applied (numbers,
booleans, ISO dates), and every column as text, from which the date formats pyarrow does not
read are detected (formats/dates.py) and the null markers counted (formats/nulls.py). The
result says, per column, its type, its NULLs in the sample, the markers read as NULL, the date
format and why a column that looks like dates stays text.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from chute.coltypes import from_polars, parse_type
from chute.config.project import Source
from chute.coltypes import kind_of_format
from chute.formats.dates import detect_temporal, looks_temporal
from chute.formats.nulls import code_like, marker_counts
from chute.formats.reader import read_records
from chute.formats.text import ROW_COLUMN

_TEMPORAL = {"date", "timestamp", "timestamptz", "time"}


@dataclass
class ColumnInfo:
    name: str  # in the table
    type: str  # chute type name
    nulls: int  # NULLs in the rows read
    markers: dict[str, int] = field(default_factory=dict)  # non-empty null markers met, with their counts
    format: str | None = None  # the date/time format it is parsed with
    note: str = ""  # why a date-like column stays text, a marker that may be data, ...
    original: str | None = None  # the file's name for it, when normalised to another


@dataclass
class Schema:
    columns: list[ColumnInfo]
    rows: int  # rows read to infer (the whole file when `complete`)
    complete: bool
    null_values: list[str]
    format: str = "csv"  # as read: csv, json, jsonl, parquet, excel (formats/detect.py)
    dialect: dict | None = None  # CSV: delimiter, quote, header, encoding and whether each was sniffed

    @property
    def types(self) -> dict[str, str]:
        return {c.original or c.name: c.type for c in self.columns}

    @property
    def formats(self) -> dict[str, str]:
        return {c.original or c.name: c.format for c in self.columns if c.format}

    def as_dict(self) -> dict:
        out = {"format": self.format, "columns": [asdict(c) for c in self.columns], "rows_sampled": self.rows,
               "sample_is_whole_file": self.complete, "null_values": self.null_values}
        if self.dialect is not None:
            out["dialect"] = self.dialect
        return out


def infer_schema(head: pa.Buffer, source: Source, overrides: dict[str, str], date_formats: dict[str, str],
                 complete: bool) -> tuple[Schema, pl.DataFrame]:
    """The schema of the rows in `head` (the file's first block) and those rows, typed.

    `overrides`: --type COL=TYPE; `date_formats`: --date-format COL=FMT. A temporal override
    needs a format the values or the user give (or ISO, which pyarrow reads); else ConfigError."""
    plain = source.model_copy(update={"columns": {}, "formats": {}})
    with ThreadPoolExecutor(1) as scan:  # the byte scan (numpy) runs while pyarrow parses
        zeros = scan.submit(_may_lead_with_zero, head, source)
        typed = read_records(head, plain, 1 << 30)[0].drop(ROW_COLUMN)
        kinds = {name: from_polars(typed.schema[name]).name for name in typed.columns}
        numbers_with_zeros = any(k in ("bigint", "double") for k in kinds.values()) and zeros.result()
    text = None  # the columns as text: only needed for markers read as NULL, or numbers with leading zeros
    if any(typed.null_count().row(0)) or numbers_with_zeros:
        as_text = source.model_copy(update={"null_values": [""], "formats": {},
                                            "columns": {c: "text" for c in typed.columns}})
        text = read_records(head, as_text, 1 << 30)[0].drop(ROW_COLUMN)
    markers = source.nulls()
    columns = []
    for name in typed.columns:
        kind = kinds[name]
        if text is not None:
            raw = text.get_column(name) if name in text.columns else pl.Series(name, [], pl.String)
        else:  # no NULL in the column: its text, where it is text, is what the typed reading holds
            raw = typed.get_column(name) if kind == "text" else pl.Series(name, [], pl.String)
        if raw.dtype != pl.String:  # a column pyarrow would not read as text (named "" in the header)
            raw = raw.cast(pl.String)
        info = ColumnInfo(name, kind, typed.get_column(name).null_count(), marker_counts(raw, markers))
        values = raw.filter(~raw.is_in(markers)).drop_nulls() if raw.len() else raw
        if kind in ("bigint", "double") and bool(values.str.contains(r"^[+-]?0\d").any()):
            info.type, info.note = "text", "leading zeros (codes, not numbers): kept as text"
        _temporal(info, values, kind, overrides.get(name), date_formats.get(name))
        if info.type == "text" and info.markers and info.nulls and code_like(raw, markers):
            shown = ", ".join(f"{m} ({n})" for m, n in info.markers.items())
            info.note = f"{shown} read as NULL among codes: if data, quote it or give --null without it"
        columns.append(info)
    return Schema(columns, typed.height, complete, markers), typed


def _may_lead_with_zero(head: pa.Buffer, source: Source) -> bool:
    """Whether any field of `head` may be a number written with a leading zero (007, -01.5):
    a 0 that starts a field (after the delimiter, a line break, a quote or a sign) and is
    followed by a digit. A cheap scan of the bytes that spares the all-text second parse of
    most files; any doubt (an encoding that is not ASCII-compatible) answers yes."""
    if source.encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return True
    b = np.frombuffer(head, np.uint8)
    zero = np.flatnonzero(b[:-1] == ord("0"))
    zero = zero[(b[zero + 1] >= ord("0")) & (b[zero + 1] <= ord("9"))]
    if not zero.size:
        return False
    starts = np.frombuffer(f"{source.delimiter}{source.quote}\n\r".encode(), np.uint8)
    before = np.where(zero >= 1, b[np.maximum(zero - 1, 0)], ord("\n"))
    signed = (before == ord("+")) | (before == ord("-"))
    before = np.where(signed & (zero >= 2), b[np.maximum(zero - 2, 0)], before)
    return bool(np.isin(before, starts).any())


def infer_frame(typed: pl.DataFrame, overrides: dict[str, str], date_formats: dict[str, str],
                complete: bool) -> Schema:
    """The schema of rows a typed reader gave (JSON, Parquet): their own types, and dates
    detected in their text columns. No null markers: JSON and Parquet have a null of their own,
    so the string "NA" there is data."""
    columns = []
    for name in typed.columns:
        series = typed.get_column(name)
        kind = from_polars(series.dtype).name
        info = ColumnInfo(name, kind, series.null_count())
        values = series.drop_nulls() if series.dtype == pl.String else pl.Series(name, [], pl.String)
        _temporal(info, values, kind, overrides.get(name), date_formats.get(name))
        columns.append(info)
    return Schema(columns, typed.height, complete, [])


def _temporal(info: ColumnInfo, values: pl.Series, kind: str, wanted: str | None, given: str | None) -> None:
    """A column's date/time type and format (detected from its text `values`, or `given`), then
    the user's --type `wanted` on top; ConfigError for a temporal type with no format to read it."""
    from chute.errors import ConfigError

    name = info.name
    if given:
        info.format = given
        info.type = wanted or {"date": "date", "time": "time"}.get(kind_of_format(given)) or (
            "timestamptz" if "z" in given else "timestamp")
    elif kind == "text" and values.len():
        found = detect_temporal(values)
        if found.kind:
            info.type, info.format, info.note = found.type, found.format, found.reason
        elif looks_temporal(values.head(50).to_list()) or (wanted and parse_type(wanted).name in _TEMPORAL):
            info.note = f"stays text: {found.reason}"
    if wanted and parse_type(wanted).name in _TEMPORAL and info.type == "text" and values.len() and not given:
        found = detect_temporal(values, tolerant=True)  # asked for a date: a few bad values are rejects, not a veto
        if found.kind:
            info.format = found.format
            info.note = "values that are not dates are quarantined"
    if wanted:
        if parse_type(wanted).name in _TEMPORAL and info.format is None:
            raise ConfigError(f"--type {name}={wanted}: the values of {name!r} are not dates chute can read "
                              f"({info.note.removeprefix('stays text: ') or 'no date format found'}); "
                              f"give --date-format {name}=FORMAT, e.g. %d/%m/%Y")
        info.type = parse_type(wanted).name

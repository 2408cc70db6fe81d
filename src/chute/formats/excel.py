"""Excel workbooks (.xlsx, .xlsm, .xls, .ods) -> a polars frame of one sheet.

fastexcel (Rust calamine, the engine behind polars.read_excel) reads the sheet. Every cell
arrives as text, so a sheet that mixes titles, two-row headers and numbers in one column
(as report-style workbooks do) still reads; numbers keep their full precision (calamine's
text form would round them to the displayed digits), and whole numbers read as "208", not
"208.0". Declared `[source.columns]` types are then applied.

With header = false, blank rows are kept: they are what separates the sub-tables of a
report sheet, and a node can split on them. With header = true the first non-blank row
names the columns and blank rows are dropped.

A workbook is a zip archive that must be read whole; sheets are read one at a time, so
memory follows the size of the chosen sheet, not of the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from chute.errors import ReadError
from chute.config.project import Source

_EXACT_INT = 2**53  # floats beyond this are not exact whole numbers


def read_excel(data: pa.Buffer | str, source: Source, block_bytes: int = 64 << 20) -> Iterator[pl.DataFrame]:
    import fastexcel

    raw = data.to_pybytes() if isinstance(data, pa.Buffer) else data
    if isinstance(raw, bytes) and not raw:
        raise ReadError("the file is empty")
    try:
        reader = fastexcel.read_excel(raw)
    except Exception as exc:
        raise ReadError(f"not a readable Excel workbook (.xlsx, .xlsm, .xls, .ods): {_first_line(exc)}") from None
    sheet = 0 if source.sheet is None else source.sheet
    names = reader.sheet_names
    if isinstance(sheet, int) and not 0 <= sheet < len(names) or isinstance(sheet, str) and sheet not in names:
        raise ReadError(f"the workbook has no sheet {sheet!r}; its sheets are: {', '.join(map(repr, names))}")
    cells = _cells(reader, sheet)
    try:
        frame = _named(cells, source)
    except pl.exceptions.PolarsError as exc:  # an odd sheet must fail its file, not the run
        raise ReadError(f"cannot lay out sheet {sheet!r}: {_first_line(exc)}") from None
    if frame.height == 0:
        raise ReadError(f"sheet {sheet!r} has no data rows")
    yield _typed(frame, source)


def _cells(reader, sheet: str | int) -> pl.DataFrame:
    """The sheet as text columns c0, c1, ...: one row per sheet row, blank rows included."""
    def load(dtypes):
        return reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes=dtypes).to_polars()

    try:
        text = load("string")
    except Exception as exc:
        raise ReadError(f"cannot read sheet {sheet!r}: {_first_line(exc)}") from None
    text = text.rename({c: f"c{i}" for i, c in enumerate(text.columns)})
    try:
        numbers = load("float")
    except Exception:  # a column calamine cannot see as numbers at all: its text is all there is
        return text
    numbers = numbers.rename({c: f"c{i}" for i, c in enumerate(numbers.columns)})
    exprs = []
    for c in text.columns:
        n = numbers.get_column(c)
        whole = (n == n.round(0)) & (n.abs() < _EXACT_INT)
        as_text = pl.when(whole).then(n.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(n.cast(pl.String))
        # Only where the text is a number too: a date cell may read as its serial number.
        numeric = pl.col(c).str.contains(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
        exprs.append(pl.when(n.is_not_null() & numeric).then(as_text).otherwise(pl.col(c)).alias(c))
    return text.with_columns(exprs)


def _named(cells: pl.DataFrame, source: Source) -> pl.DataFrame:
    blank = pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in cells.columns])
    if source.header:
        rows = cells.filter(~blank)
        if rows.height == 0:
            return rows
        header = [str(v).strip() if v is not None else "" for v in rows.row(0)]
        names = [h or f"f{i}" for i, h in enumerate(header)]
        seen: dict[str, int] = {}
        for i, n in enumerate(names):  # repeated titles (two "Female" columns) get a suffix
            seen[n] = seen.get(n, 0) + 1
            if seen[n] > 1:
                names[i] = f"{n}_{seen[n]}"
        return rows.slice(1).rename(dict(zip(rows.columns, names)))
    declared = list(source.columns)
    if declared and len(declared) > cells.width:
        raise ReadError(f"[source.columns] names {len(declared)} columns but the sheet has {cells.width}")
    names = declared + [f"f{i}" for i in range(len(declared), cells.width)]
    # Blank rows at the end carry nothing.
    last = cells.with_row_index("_chute_row").filter(~blank).get_column("_chute_row").max()
    trimmed = cells if last is None else cells.head(int(last) + 1)
    return trimmed.rename(dict(zip(cells.columns, names)))


def _typed(frame: pl.DataFrame, source: Source) -> pl.DataFrame:
    """The null markers ([source] null_values: NA, N/A, ...) read as NULL in every column, then
    the declared types applied (dates with their [source.formats] format when given)."""
    from chute.coltypes import convert_text

    types = source.column_types()
    missing = [c for c in types if c not in frame.columns]
    if missing:
        raise ReadError(f"the sheet has no column(s) {', '.join(missing)} (it has: {', '.join(frame.columns)})")
    markers = [m for m in source.nulls() if m]
    if markers:
        frame = frame.with_columns(pl.when(pl.col(c).is_in(markers)).then(None).otherwise(pl.col(c)).alias(c)
                                   for c, t in frame.schema.items() if t == pl.String)
    for name, t in types.items():
        text = pl.col(name).str.strip_chars()
        fmt = source.formats.get(name)
        if fmt:
            parsed = frame.select(convert_text(text, t.polars, fmt).alias(name)).to_series()
            bad = frame.get_column(name).is_not_null() & parsed.is_null()
            if bad.any():
                raise ReadError(f"column {name!r}: {frame.get_column(name).filter(bad)[0]!r} is not a {t.name} "
                                f"of the format {fmt!r}")
            frame = frame.with_columns(parsed)
            continue
        try:
            frame = frame.with_columns(_cast(text, t.polars).alias(name))
        except pl.exceptions.PolarsError as exc:
            raise ReadError(f"column {name!r}: not {t.name}: {_first_line(exc)[:200]}") from None
    return frame


def _cast(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Text to a declared type. Date cells read as '2024-01-02 00:00:00' or '2024-01-02'."""
    if dtype == pl.Date:
        return text.str.to_datetime(strict=True).dt.date()
    if isinstance(dtype, pl.Datetime):
        return text.str.to_datetime(strict=True, time_unit=dtype.time_unit, time_zone=dtype.time_zone)
    return text.cast(dtype, strict=True)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

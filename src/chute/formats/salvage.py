"""Where rows come from in their file, and what to do with records the fast reader refuses.

Every frame read from a file carries ROW_COLUMN: the record's position among the file's data
records (1 = the first after the header). Counting records is free; the line number and the
raw text of a record are looked up afterwards, only for the few records that are rejected,
by scanning the file once with Python's csv module (which, like pyarrow, handles quoted
newlines and skips blank lines, so record positions agree).

When pyarrow's strict parse of a whole file fails (a ragged row, bad quoting, bytes that are
not text, a value that does not convert to a declared source type), `read_lenient` parses it
record by record: bad records become parse rejects with their line, the good ones are read
again by the strict reader, so they get exactly the types they would have had.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

import polars as pl
import pyarrow as pa

from chute.errors import ReadError, setting
from chute.formats.text import ROW_COLUMN, ParseReject, row_numbers
from chute.formats.compress import decompressed, detect_compression
from chute.formats.csv import quote_left_open, read_csv
from chute.config.project import Source
from chute.coltypes import cast_expr

MASK = "***"
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def numbered(frames: Iterable[pl.DataFrame], start: int = 1) -> Iterator[pl.DataFrame]:
    """The frames of one file, each with ROW_COLUMN counting records from `start` (JSON lines:
    the line number the reader gave each record)."""
    from chute.formats.csv import RECORD_COLUMN
    from chute.formats.jsonl import LINE_COLUMN

    for frame in frames:
        given = LINE_COLUMN if LINE_COLUMN in frame.columns else RECORD_COLUMN if RECORD_COLUMN in frame.columns else None
        if given:  # the reader numbered the rows itself (it refused some records on the way)
            yield frame.rename({given: ROW_COLUMN})
            continue
        yield frame.with_columns(row_numbers(ROW_COLUMN, start, frame.height))
        start += frame.height


class NoRecordParses(ReadError):
    """Read record by record, no record of the text parsed: the message names the first bad line."""


def read_lenient(data: pa.Buffer | bytes, source: Source, strict_error: Exception) -> tuple[pl.DataFrame, list[ParseReject]]:
    """Parse a file the strict reader refused, record by record.

    Raises NoRecordParses when there is nothing to salvage (no good record), and `strict_error`
    again when nothing is wrong at record level (the problem is the file as a whole, e.g. it is binary).
    """
    frame, rejects, _ = _salvaged(bytes(data), source, strict_error)
    return frame, rejects


def salvage_block(block: memoryview, source: Source, names: list[str] | None, types: dict[str, pa.DataType],
                  rows_before: int, lines_before: int, strict_error: Exception
                  ) -> tuple[pl.DataFrame, list[ParseReject], int]:
    """One block of a streamed file (UTF-8 text) that the strict parse refused, record by record.

    `names` is None for the file's first block (it holds the header, if any); later blocks
    are pure records, read with the types the first block fixed (`types`), so a value that
    does not convert to them is a reject of its record. Returns the good rows (with file-wide
    ROW_COLUMN), the rejects (file-wide row and line numbers) and the block's record count.
    """
    view = source.model_copy(update={"encoding": "utf-8", "compression": "none"})
    if names is not None:
        view = view.model_copy(update={"header": False, "columns": {
            n: source.columns.get(n) or (_declared(types[n]) if n in types else "text") for n in names}})
    frame, rejects, records = _salvaged(bytes(block), view, strict_error, lines_before)
    for r in rejects:
        r.row_number += rows_before
        r.line_number += lines_before
    return frame.with_columns(pl.col(ROW_COLUMN) + rows_before), rejects, records


def _declared(arrow_type: pa.DataType) -> str:
    """The chute column type a column read as `arrow_type` converts to."""
    from chute.coltypes import from_polars

    return from_polars(pl.from_arrow(pa.array([], arrow_type)).dtype).name


def _salvaged(raw: bytes, source: Source, strict_error: Exception, lines_before: int = 0
              ) -> tuple[pl.DataFrame, list[ParseReject], int]:
    try:
        return _lenient(raw, source, strict_error, lines_before)
    except ReadError:
        raise
    except Exception:  # the lenient reader could not make sense of it either: the first error stands
        raise strict_error from None


def _lenient(raw: bytes, source: Source, strict_error: Exception, lines_before: int = 0
             ) -> tuple[pl.DataFrame, list[ParseReject], int]:
    kind = detect_compression(raw[:6]) if source.compression == "auto" else \
        None if source.compression == "none" else source.compression
    if kind:  # a cut or corrupt stream is a ReadError (it stands: nothing is salvaged from it)
        raw = decompressed(io.BytesIO(raw), kind).read()
    if b"\x00" in raw[:8192] and not source.encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
        raise strict_error
    names = None if source.header else (list(source.columns) or None)
    expected = None
    good: list[list[str]] = []
    good_rows: list[int] = []
    rejects: list[ParseReject] = []
    where: dict[int, tuple[int, str, list[str]]] = {}  # row -> (line, text, fields) of good records
    row = 0
    for row, header, (line, end, fields, text) in _numbered(_records(raw, source), source):
        if source.header:
            names = header
        if expected is None:
            expected = len(names) if names else len(fields)
        header = names if source.header else None
        if _UNDECODABLE.search(text):
            rejects.append(ParseReject(row, line, f"not valid {source.encoding} text (set {setting('encoding')} if "
                                       "the whole file is in another encoding)",
                                       mask_record(text, fields, header, source)))
        elif fields is UNCLOSED:
            rejects.append(ParseReject(row, line, f"unclosed quote: the quote opened in the record on line "
                                       f"{line} is never closed, so lines {line}-{end} (the end of the file) "
                                       "would be one value", mask_record(text, fields, header, source)))
        elif len(fields) != expected:
            rejects.append(ParseReject(row, line, f"ragged row: expected {expected} fields, got {len(fields)}"
                                       + (f" (lines {line}-{end}: an unclosed quote?)" if end > line else ""),
                                       mask_record(text, fields, header, source)))
        else:
            good.append(fields)
            good_rows.append(row)
            where[row] = (line, text, fields)
    frame = _typed(good, names, source, good_rows, rejects) if good else None
    for r in rejects:
        if r.line_number == 0:  # a value that did not convert: point at its record
            line, text, fields = where[r.row_number]
            r.line_number, r.raw_record = line, mask_record(text, fields, names if source.header else None, source)
            if r.column in source.pii_columns:
                r.value = MASK
    if not rejects:
        raise strict_error
    if frame is None or frame.is_empty():  # nothing to load: the file fails, naming where it starts to go wrong
        first = min(rejects, key=lambda r: r.line_number)
        raise NoRecordParses(f"{strict_error} (no record could be read; the first refused is on line "
                        f"{lines_before + first.line_number}: {first.reason})")
    return frame, rejects, row


def _numbered(records: Iterable[tuple[int, int, list[str], str]], source: Source
              ) -> Iterator[tuple[int, list[str] | None, tuple[int, int, list[str], str]]]:
    """The data records numbered from 1 (the rows of `source_row`), each with the file's header
    fields (None when the source has no header line)."""
    header: list[str] | None = None
    row = 0
    for record in records:
        if source.header and header is None:
            header = record[2]
            continue
        row += 1
        yield row, header, record


def _records(raw: bytes, source: Source) -> Iterator[tuple[int, int, list[str], str]]:
    """(first line, last line, fields, text) of each non-blank record."""
    text = io.TextIOWrapper(io.BytesIO(raw), encoding=source.encoding, errors="surrogateescape", newline="")
    yield from _scan(text, source)


def _scan(text: Iterable[str], source: Source) -> Iterator[tuple[int, int, list[str], str]]:
    taken: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            taken.append(line)
            yield line

    # strict: the only way to learn that the text ends inside a quoted field
    reader = csv.reader(lines(), delimiter=source.delimiter, quotechar=source.quote, strict=True)
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = UNCLOSED if quote_left_open(exc) else _forgiving("".join(taken), source, exc)
        first, last = last + 1, reader.line_num
        record = "".join(taken)
        taken.clear()
        if fields:  # a blank line is no record (pyarrow skips them too)
            yield first, last, fields, record


UNCLOSED = ["<a quote never closed>"]  # the fields of a record whose quote runs to the end of the text


def _forgiving(record: str, source: Source, strict_error: csv.Error) -> list[str]:
    """The fields of a record the strict reader refused, read as pyarrow reads it (text after
    a closing quote is kept); one field saying why when it is unreadable as CSV (a NUL byte)."""
    try:
        return next(csv.reader(io.StringIO(record, newline=""), delimiter=source.delimiter,
                               quotechar=source.quote), [])
    except csv.Error:
        return [f"<{strict_error}>"]


def _typed(good: list[list[str]], names: list[str] | None, source: Source, rows: list[int],
           rejects: list[ParseReject]) -> pl.DataFrame | None:
    """The good records, read back by the strict reader with declared columns as text, then
    cast to their declared types; a value that does not convert rejects its record."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=source.delimiter, quotechar=source.quote, lineterminator="\n")
    if source.header and names:
        writer.writerow(names)
    writer.writerows(good)
    as_text = source.model_copy(update={"columns": {c: "text" for c in source.columns}, "compression": "none",
                                        "encoding": "utf-8", "formats": {}})
    data = pa.py_buffer(out.getvalue().encode("utf-8", errors="surrogateescape"))
    frames = list(read_csv(data, as_text, 1 << 30))
    frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    frame = frame.with_columns(pl.Series(ROW_COLUMN, rows, dtype=pl.Int64))
    bad = pl.repeat(False, frame.height, eager=True)
    for name, type_ in source.column_types().items():
        if name not in frame.columns or type_.polars == pl.String:
            continue
        cast = frame.select(cast_expr(name, pl.String, type_.polars, source.formats.get(name)).alias(name)).to_series()
        wrong = frame.get_column(name).is_not_null() & cast.is_null()
        for row, value in frame.filter(wrong).select(ROW_COLUMN, name).iter_rows():
            rejects.append(ParseReject(row, 0, f"not a valid {type_.name}" + (
                f" of the format {source.formats[name]!r}" if name in source.formats else ""), "", name, value))
        bad = bad | wrong
        frame = frame.with_columns(cast)
    return frame.filter(~bad)


def _shown(text: str) -> str:
    """Undecodable bytes shown as U+FFFD, never as lone surrogates PostgreSQL would refuse."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace").rstrip("\r\n")


def locate(path_or_bytes: str | bytes, source: Source, rows: set[int]) -> dict[int, tuple[int, str]]:
    """Record position -> (line where it starts, its text with PII masked), for `rows` only."""
    found: dict[int, tuple[int, str]] = {}
    if not rows:
        return found
    if source.format == "jsonl":
        from chute.formats.jsonl import locate_lines

        return locate_lines(path_or_bytes, source, rows)
    if source.format != "csv":  # a JSON document, Parquet, Excel: the row itself is shown (as JSON)
        return found
    with _open_text(path_or_bytes, source) as text:
        for row, names, (line, _, fields, record) in _numbered(_scan(text, source), source):
            if row in rows:
                found[row] = (line, mask_record(record, fields, names, source))
                if len(found) == len(rows):
                    break
    return found


def _open_text(path_or_bytes: str | bytes, source: Source) -> io.TextIOWrapper:
    raw = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb")
    head = raw.read(6)
    raw.seek(0)
    kind = detect_compression(head) if source.compression == "auto" else \
        None if source.compression == "none" else source.compression
    if kind:
        raw = decompressed(raw, kind)
    return io.TextIOWrapper(raw, encoding=source.encoding, errors="surrogateescape", newline="")


def column_names(source: Source, header: list[str] | None) -> list[str]:
    if header is not None:
        return header
    return list(source.columns)


def mask_record(record: str, fields: list[str], header: list[str] | None, source: Source) -> str:
    """The record's text with the values of PII columns replaced by MASK.

    When the record does not split into the expected fields, the positions of PII values are
    unknown: the whole record is masked rather than risk showing one.
    """
    record = _shown(record)
    if not source.pii_columns:
        return record
    names = column_names(source, header)
    positions = [i for i, n in enumerate(names) if n in source.pii_columns]
    if not positions:
        return record
    if len(fields) != len(names):
        return f"{MASK} (record withheld: it has {len(fields)} fields, not {len(names)}, and the file has PII columns)"
    masked = [MASK if i in positions else _shown(f) for i, f in enumerate(fields)]
    out = io.StringIO()
    csv.writer(out, delimiter=source.delimiter, quotechar=source.quote, lineterminator="").writerow(masked)
    return out.getvalue()


def row_json(frame: pl.DataFrame, pii: Iterable[str]) -> pl.Series:
    """Each row as a JSON object of text values, PII columns masked (for rows with no source record)."""
    pii = set(pii)
    records = frame.select(pl.struct([
        (pl.lit(MASK) if c in pii else pl.col(c).cast(pl.String)).alias(c) for c in frame.columns
    ]).struct.json_encode().alias("raw_record"))
    return records.get_column("raw_record")



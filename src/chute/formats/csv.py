"""CSV -> polars frames, in bounded blocks, with errors a person can act on.

The file is streamed (gzip decompressed on the way, other encodings transcoded to UTF-8),
cut into blocks at record boundaries and each block parsed by pyarrow, so memory stays
bounded however large the file is.
"""

from __future__ import annotations

import codecs
import csv as _csv
import functools
import io
import os
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from chute.errors import ReadError, settable, setting
from chute.config.project import Source
from chute.formats.text import ROW_COLUMN, count_byte, row_numbers, shaped
from chute.coltypes import convert_text
from chute.formats.compress import decompressed, detect_compression
from chute.formats.dialect import check_delimiter

# The csv module (the quote check here, quality.records' lenient reader) refuses values over
# 128 KB; a quote left open makes one value of the rest of the file, which must be seen as such.
_csv.field_size_limit(1 << 30)

GZIP_MAGIC = b"\x1f\x8b"


@functools.cache
def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    return pl.Series([], dtype=dtype).to_arrow().type


# What read_csv reads: the bytes, a path on disk, or a function opening a binary stream
# (an S3 object's body, read once from start to end).
Data = pa.Buffer | str | Callable[[], BinaryIO]


def open_stream(data: Data, source: Source) -> BinaryIO | pa.NativeFile:
    """A byte stream over a buffer, a path or an opener, decompressed when needed (gzip, bz2,
    xz, zstd; formats/compress.py: a cut or corrupt stream raises ReadError where it breaks)."""
    if callable(data):
        raw = io.BufferedReader(_RawStream(data()), 1 << 20)
        head = raw.peek(6)[:6]  # a network stream cannot seek back: look ahead instead
    else:
        raw = pa.BufferReader(data) if isinstance(data, pa.Buffer) else pa.OSFile(data)
        head = raw.read(6)
        raw.seek(0)
    kind = detect_compression(head) if source.compression == "auto" else \
        None if source.compression == "none" else source.compression
    if kind:
        return decompressed(raw, kind)
    return raw if not callable(data) else pa.PythonFile(raw, mode="r")


class _RawStream(io.RawIOBase):
    """Any object with read(n) (an S3 object's body) as a raw stream, so io.BufferedReader can peek."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.stream.close()
        super().close()


def read_csv(data: Data, source: Source, block_bytes: int = 64 << 20,
             rejects: list | None = None, salvage: Callable | None = None) -> Iterator[pl.DataFrame]:
    """Yield frames of the file's rows. Raises ReadError with a clear message on bad input.

    The file is cut into blocks of at most READ_BLOCK bytes at record boundaries and each block
    is parsed on its own (in parallel inside the block). pyarrow's streaming reader would parse
    ahead of the consumer without limit (2.2 GB resident for a 2 GB file), so it is not used.
    Column names and types come from the first block, as a streaming reader would do.

    With a `rejects` list, a block the strict parse refuses is parsed record by record by
    `salvage` (formats/salvage.py: salvage_block, given by reader.py, so that this module does
    not import the salvage that reads through it): its bad records go to the list (with file-wide row and line numbers) and its good ones are yielded;
    every frame then carries RECORD_COLUMN, each row's position among the file's records.
    """
    stream = open_stream(data, source)
    try:
        head = stream.read(8192)
        if not head:
            raise ReadError("the file is empty")
        _reject_binary(head, source.encoding)
        names, types = _declared(source)
        size = min(block_bytes, READ_BLOCK)
        # With every column's type declared the first block decides nothing, so it is small:
        # the COPY starts on its rows while the next, full-sized block is parsed.
        first = min(size, FIRST_BLOCK) if _all_declared(head, source) else size
        blocks = _text_blocks(stream, head, size, source, first)
        rows = lines = 0  # records and lines in the blocks before this one
        empty = None  # the first block's columns, without rows
        previous = None  # its lines are counted only once another block follows (most files are one block)
        for i, (block, last) in enumerate(blocks):
            if rejects is not None and previous is not None:
                lines += count_byte(previous, b"\n")
            previous = block
            try:
                if last:
                    # the lines before this block: counted already when salvaging, else read again (on error only)
                    _check_quotes_closed(block, source, (lambda: lines) if rejects is not None
                                         else lambda: _lines_before_last_block(data, source, size, first))
                table = _parse(block, source, names, types, threads=i == 0 and block.nbytes > THREADED_BLOCK)
                if table.num_rows:
                    _reject_undecodable(table, source)
                    table = _dates(table, source)
            except ReadError as exc:
                if rejects is None:
                    raise
                frame, bad, records = salvage(block, source, names, types, rows, lines, exc)
                rejects.extend(bad)
                if i == 0:
                    names = [c for c in frame.columns if c != ROW_COLUMN]
                rows += records
                if frame.height:
                    yield frame.rename({ROW_COLUMN: RECORD_COLUMN})
                continue
            if i == 0:  # the first block fixes the names and (where not declared) the types
                if table.num_columns == 1 and len(source.columns) != 1:  # one column: the delimiter wrong?
                    check_delimiter(bytes(block[:1 << 16]), source.delimiter, source.quote, "utf-8")
                names = table.column_names
                empty = table.slice(0, 0)
                types |= {f.name: f.type for f in table.schema if f.name not in types and not pa.types.is_null(f.type)}
            if table.num_rows:
                frame = pl.from_arrow(table)
                if rejects is not None:
                    frame = frame.with_columns(row_numbers(RECORD_COLUMN, rows + 1, frame.height))
                rows += table.num_rows
                yield frame  # type: ignore[misc]
    finally:
        stream.close()
    if rows == 0 and not source.header:
        raise ReadError("the file has no data rows")
    if rows == 0:  # a header and no rows (a ticker that did not trade): no rows, the header's columns
        yield pl.from_arrow(empty) if empty is not None else pl.DataFrame(schema={n: pl.String for n in names})


def read_together(buffers: list[pa.Buffer], source: Source) -> tuple[list[int], pl.DataFrame, list[int]] | None:
    """Small files parsed as one text: pyarrow's cost per call (with polars', ~0.6 ms a file) is
    more than the parse of a typical 100 KB file.

    Only plain files go together: UTF-8, not gzip, no quote character, carriage return, NUL or
    blank line, ending in a newline, with data rows and (with a header) the same header line as
    the others. Each record of such a file is one line, so counting lines tells the files' rows
    apart. Returns (the indices of the files read, their rows in order, each one's record
    count), or None when fewer than two files qualify or their text does not parse: each file is
    then read alone (and gets its own error, or its bad records quarantined)."""
    if source.compression not in ("auto", "none") or codecs.lookup(source.encoding).name != "utf-8":
        return None
    quote = source.quote.encode()
    datas = [b.to_pybytes() for b in buffers]
    headers: dict[bytes, list[int]] = {}
    for i, data in enumerate(datas):
        # (A blank line is looked for only if the rows come out short: the search is slow.)
        if not data.endswith(b"\n") or detect_compression(data[:6]) or quote in data or b"\r" in data \
                or b"\x00" in data:
            continue
        header = data[:data.index(b"\n") + 1] if source.header else b""
        if len(data) > len(header):
            headers.setdefault(header, []).append(i)
    if not headers:
        return None
    header, chosen = max(headers.items(), key=lambda h: len(h[1]))
    counts = [count_byte(datas[i], b"\n") - (1 if source.header else 0) for i in chosen]
    while len(chosen) >= 2:
        rows = _parse_together(header, [datas[i] for i in chosen], source)
        if rows is not None and rows.height == sum(counts):
            return chosen, rows, counts
        # pyarrow skips blank lines: without those files the counts hold; else each is read alone
        plain = [k for k, i in enumerate(chosen) if b"\n\n" not in datas[i]]
        if rows is None or len(plain) == len(chosen):
            return None
        chosen, counts = [chosen[k] for k in plain], [counts[k] for k in plain]
    return None


def _parse_together(header: bytes, datas: list[bytes], source: Source) -> pl.DataFrame | None:
    """The files' rows, parsed as one text in one call (on one core: it runs while the rows
    before are being loaded); None if that text does not parse."""
    text = b"".join([header] + [memoryview(d)[len(header):] for d in datas])
    try:
        table = _parse(memoryview(text), source, *_declared(source), threads=False)
        _reject_undecodable(table, source)
        table = _dates(table, source)
    except ReadError:
        return None
    return shaped(pl.from_arrow(table), source.select, source.rename)


def _declared(source: Source) -> tuple[list[str] | None, dict]:
    """The column names a header-less file is given, and the arrow types of the declared columns."""
    names = list(source.columns) if not source.header and source.columns else None
    types = {name: _arrow_type(t.polars) for name, t in source.column_types().items()}
    return names, types | {name: pa.string() for name in source.formats}  # parsed by _dates


def _dates(table: pa.Table, source: Source) -> pa.Table:
    """The columns of [source.formats] (read as text) parsed with their format; ReadError naming
    the first value that does not parse (the salvage then quarantines its record)."""
    wanted = [c for c in source.formats if c in table.column_names]
    if not wanted:
        return table
    frame = pl.from_arrow(table.select(wanted))
    declared = source.column_types()
    parsed = frame.select(convert_text(pl.col(c), declared[c].polars if c in declared else None, source.formats[c])
                          .alias(c) for c in wanted)
    for c in wanted:
        bad = frame.get_column(c).is_not_null() & parsed.get_column(c).is_null()
        if bad.any():
            value = frame.get_column(c).filter(bad)[0]
            raise ReadError(f"column {c!r}: {value!r} is not a date/time of the format {source.formats[c]!r}; "
                            f"set {setting('formats')} for it")
    for c in wanted:
        table = table.set_column(table.column_names.index(c), c, parsed.get_column(c).to_arrow())
    return table


RECORD_COLUMN = "_chute_record"  # see read_csv; quality.records.numbered renames it
READ_BLOCK = 16 << 20  # bytes of text per parsed block: bounds memory at a few times this
THREADED_BLOCK = 4 << 20  # a smaller first block is parsed on one core (small files are read side by side)
FIRST_BLOCK = THREADED_BLOCK  # the first block when every type is declared (see read_csv): one core parses it


def _parse(block: memoryview, source: Source, names: list[str] | None, types: dict,
           threads: bool = True) -> pa.Table:
    """One block; with `names` given its first line is data, else the header (or f0, f1, ...).

    `threads`: parse parts of the block on every core. Faster, but a third more CPU in all
    (2 M rows: 1.1 CPU-s against 0.82 on one thread), so blocks read while the rows before
    them are being copied go on one core: on a small machine the server needs the other.
    """
    read_options = pacsv.ReadOptions(
        block_size=max(1 << 20, len(block) // (os.cpu_count() or 1) + 1) if threads else len(block) + 1,
        column_names=names,
        autogenerate_column_names=names is None and not source.header,
        use_threads=threads,
    )
    # Cut into parts for the threads, a block must not be cut inside a quoted value
    parse_options = pacsv.ParseOptions(delimiter=source.delimiter, quote_char=source.quote,
                                       newlines_in_values=threads)
    convert_options = pacsv.ConvertOptions(
        column_types=types, null_values=source.nulls(), strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(block)), read_options, parse_options, convert_options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadError(explain(str(exc), source, names or _column_names(bytes(block[:65536]), source))) from None
    if names is None and source.header:
        _check_header(table.column_names)
    return table


def _check_header(names: list[str]) -> None:
    """A header naming a column twice: which of the two would a pipeline or a table mean?
    (Empty names are left to polars, which calls them column_0, column_1, ... as pandas'
    unnamed index column needs.)"""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name and name in seen:
            raise ReadError(f"the header names column {name!r} twice (columns {seen[name]} and {i}); "
                            "rename one of them in the file")
        seen.setdefault(name, i)


def _text_blocks(stream, head: bytes, size: int, source: Source, first: int) -> Iterator[tuple[memoryview, bool]]:
    """UTF-8 text in blocks of about `size` bytes (the first of about `first`), each ending at
    a record boundary, and whether it is the last.

    A newline ends a record unless it is inside quotes; quotes are balanced at a boundary
    (a doubled quote inside a quoted field counts twice), so counting them tells which
    newlines are boundaries. A record longer than `size` makes its block longer.
    """
    quote = source.quote.encode()
    decode = transcoder(source.encoding)
    carry = b""
    chunk = head + stream.read(max(0, first - len(head)))
    while chunk:
        following = stream.read(size)
        text = decode(chunk, False)
        buf = carry + text if carry else text
        if not following:  # the last chunk: no boundary to look for (a small file is one block)
            carry = buf
            break
        end = _last_boundary(buf, quote)
        if end < 0 and len(buf) > 4 * size:  # a stray quote inside a field unbalanced the count
            end = buf.rfind(b"\n")
        if end < 0:
            carry = buf
        else:
            yield memoryview(buf)[:end + 1], False
            carry = buf[end + 1:]
        chunk = following
    tail = carry + decode(b"", True)
    if tail:
        yield memoryview(tail if tail.endswith(b"\n") else tail + b"\n"), True


def _check_quotes_closed(block: memoryview, source: Source, lines_before: Callable[[], int]) -> None:
    """pyarrow takes a quote still open at the end of the file as a field running to the end:
    every record after it would become part of one value. PostgreSQL's COPY refuses such a
    file; so does chute. A quote inside an unquoted field (5" screen) is only a character, so
    an odd count of quotes is confirmed with the csv module before the file is refused.
    `lines_before` counts the lines of the blocks before this, the last one (only asked on error)."""
    if count_byte(block, source.quote.encode()) % 2 == 0:
        return
    text = bytes(block).decode("utf-8", errors="replace")
    reader = _csv.reader(io.StringIO(text, newline=""),
                         delimiter=source.delimiter, quotechar=source.quote, strict=True)
    while True:
        start = reader.line_num + 1  # the line the next record starts on
        try:
            next(reader)
        except StopIteration:
            return
        except _csv.Error as exc:
            if not quote_left_open(exc):
                continue  # another flaw pyarrow accepts (text after a closing quote): the reader goes on
            lines = io.StringIO(text, newline="").readlines()  # split as the reader split them
            record = lines[start - 1].rstrip("\r\n")[:80]
            raise ReadError(f"a quoted field is never closed: line {lines_before() + start} ({record!r}) opens a quote that the "
                            "file never closes, so every line after it would be read as one value; "
                            f"close the quote, or set {setting('quote')} to another character") from None


def _lines_before_last_block(data: Data, source: Source, size: int, first: int) -> int:
    """Lines before the last block, counted by reading the file again as read_csv cut it: an
    error's line number costs a second pass, the files that load cost nothing."""
    stream = open_stream(data, source)
    try:
        head = stream.read(8192)
        return sum(count_byte(block, b"\n") for block, last in _text_blocks(stream, head, size, source, first)
                   if not last)
    finally:
        stream.close()


def quote_left_open(error: _csv.Error) -> bool:
    """Whether the csv module's strict reader stopped because the text ended inside quotes."""
    return "unexpected end of data" in str(error)


def _last_boundary(buf: bytes, quote: bytes) -> int:
    """Index of the last newline in buf that is outside quotes (buf starts outside), or -1."""
    end = buf.rfind(b"\n")
    if end < 0:
        return -1
    quotes = count_byte(buf, quote, 0, end)
    while quotes % 2:
        before = buf.rfind(b"\n", 0, end)
        if before < 0:
            return -1
        quotes -= count_byte(buf, quote, before, end)
        end = before
    return end


def transcoder(encoding: str):
    """bytes -> UTF-8 bytes. UTF-8 passes through (pyarrow checks it and names the column)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ReadError(f"unknown encoding {encoding!r} in {setting('encoding')}") from None
    if info.name == "utf-8":
        return lambda data, final: data
    decoder = info.incrementaldecoder("strict")

    def transcode(data: bytes, final: bool) -> bytes:
        try:
            return decoder.decode(data, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReadError(f"the file is not valid {encoding} text ({exc.reason} at a byte {exc.object[exc.start:exc.end]!r}); "
                            f"set {setting('encoding')} to the file's encoding") from None
        except UnicodeError as exc:  # utf-16 without a byte-order mark: the decoder cannot tell the byte order
            raise ReadError(f"the file is not valid {encoding} text ({exc}); if it has no byte-order mark, set "
                            f"{setting('encoding')} to one that names the order: {info.name}-le or "
                            f"{info.name}-be") from None
    return transcode


# Files people mistake for CSV, by their first bytes (and control characters after them), and
# the [source] format that reads them, if any.
_KNOWN_BINARY = {b"PAR1": ("a Parquet file", "parquet"), b"PK\x03\x04": ("a ZIP archive", None),
                 b"%PDF": ("a PDF document", None), b"\x89PNG": ("a PNG image", None)}

_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _reject_binary(head: bytes, encoding: str) -> None:
    for magic, (what, fmt) in _KNOWN_BINARY.items():
        if head.startswith(magic) and _CONTROL.search(head):  # a text file may well start with "PAR1,"
            if magic == b"PK\x03\x04" and b"xl/" in head:  # an .xlsx workbook is a ZIP of xl/*.xml
                what, fmt = "an Excel workbook", "excel"
            reads = "" if not fmt else f"; set {setting('format', fmt)} to read it" if settable("format") else (
                f"; chute load reads CSV only: put it in a project's landing zone with [source] format = {fmt!r}")
            raise ReadError(f"this is {what}, not CSV text{reads}")
    if b"\x00" in head and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
        raise ReadError("binary data (NUL bytes): this is not a CSV text file "
                        f"(if it is UTF-16 text, set {setting('encoding', 'utf-16')})")


def _reject_undecodable(batch: pa.Table, source: Source) -> None:
    """pyarrow infers `binary` for a column whose bytes are not valid text: say so instead."""
    for field in batch.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise ReadError(f"column {field.name!r} is not valid {source.encoding} text; "
                            f"set {setting('encoding')} to the file's encoding, e.g. 'latin-1'")


def _all_declared(head: bytes, source: Source) -> bool:
    """Whether every column of the file (its header's names, as far as `head` shows them) has a
    declared type. When unsure, no: the first block then decides the types of the rest."""
    if not source.columns:
        return False
    if not source.header:
        return True  # the declared columns are the file's columns
    if b"\n" not in head:
        return False
    names = _column_names(head, source)
    return bool(names) and all(n.rstrip("\r") in source.columns for n in names)


def _column_names(head: bytes, source: Source) -> list[str]:
    if not source.header:
        return list(source.columns)
    line = head.split(b"\n", 1)[0].decode(source.encoding, errors="replace")
    return next(_csv.reader([line], delimiter=source.delimiter, quotechar=source.quote), [])


def explain(message: str, source: Source, names: list[str] = ()) -> str:
    """Turn pyarrow's error text into one line that says what is wrong and what to do."""
    message = message.strip().splitlines()[0]
    if "invalid UTF8" in message or "codec can't decode" in message:
        return (f"the file is not valid {source.encoding} text ({message}); "
                f"set {setting('encoding')} to the file's encoding, e.g. 'latin-1'")
    if m := re.search(r"Expected (\d+) columns, got (\d+): (.*)", message):
        return (f"ragged row: expected {m[1]} column{'s' * (m[1] != '1')}, got {m[2]}: {m[3][:200]!r} "
                f"(delimiter is {source.delimiter!r})")
    if "Empty CSV file" in message:
        return "the file is empty"
    if m := re.search(r"In CSV column #(\d+): (.*)", message):
        index = int(m[1])
        column = repr(names[index]) if index < len(names) else f"#{index + 1}"
        # pyarrow's "Row #N" counts within the block and only when parsing on one thread: drop it
        detail = re.sub(r"^Row #\d+: ", "", m[2])
        return f"column {column}: {detail[:300]}"
    return f"cannot parse as CSV: {message[:300]}"

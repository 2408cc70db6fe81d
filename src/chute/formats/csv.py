"""CSV -> polars frames, in bounded blocks, with errors a person can act on.

pyarrow's streaming reader does the work: it transcodes any Python encoding, reads gzip
streams and yields record batches of about `block_bytes`, so memory stays bounded however
large the file is.
"""

from __future__ import annotations

import csv as _csv
import io
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import ReadError
from ..project import Source

GZIP_MAGIC = b"\x1f\x8b"


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    return pl.Series([], dtype=dtype).to_arrow().type


# What read_csv reads: the bytes, a path on disk, or a function opening a binary stream
# (an S3 object's body, read once from start to end).
Data = pa.Buffer | str | Callable[[], BinaryIO]


def open_stream(data: Data, source: Source) -> pa.NativeFile:
    """A byte stream over a buffer, a path or an opener, decompressed when needed."""
    if callable(data):
        buffered = io.BufferedReader(_RawStream(data()), 1 << 20)
        head = buffered.peek(2)[:2]  # a network stream cannot seek back: look ahead instead
        raw = pa.PythonFile(buffered, mode="r")
    else:
        raw = pa.BufferReader(data) if isinstance(data, pa.Buffer) else pa.OSFile(data)
        head = raw.read(2)
        raw.seek(0)
    gzip = source.compression == "gzip" or (source.compression == "auto" and head == GZIP_MAGIC)
    return pa.CompressedInputStream(raw, "gzip") if gzip else raw


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


def read_csv(data: Data, source: Source, block_bytes: int = 64 << 20) -> Iterator[pl.DataFrame]:
    """Yield frames of the file's rows. Raises ReadError with a clear message on bad input."""
    with open_stream(data, source) as sniff:
        first = sniff.read(8192)
    if not first:
        raise ReadError("the file is empty")
    _reject_binary(first, source.encoding)

    types = {name: _arrow_type(t.polars) for name, t in source.column_types().items()}
    read_options = pacsv.ReadOptions(
        block_size=max(1 << 20, min(block_bytes, 1 << 30)),
        encoding=source.encoding,
        column_names=list(source.columns) if not source.header and source.columns else None,
        autogenerate_column_names=not source.header and not source.columns,
        use_threads=True,
    )
    parse_options = pacsv.ParseOptions(delimiter=source.delimiter, quote_char=source.quote)
    convert_options = pacsv.ConvertOptions(
        column_types=types, null_values=source.null_values, strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    rows = 0
    try:
        reader = pacsv.open_csv(open_stream(data, source), read_options, parse_options, convert_options)
        for batch in reader:
            if batch.num_rows:
                _reject_undecodable(batch, source)
                rows += batch.num_rows
                yield pl.from_arrow(batch)  # type: ignore[misc]
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise ReadError(explain(str(exc), source, _column_names(first, source))) from None
    if rows == 0:
        raise ReadError("the file has a header but no data rows" if source.header else "the file has no data rows")


def _reject_binary(head: bytes, encoding: str) -> None:
    if b"\x00" in head and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
        raise ReadError("binary data (NUL bytes): this is not a CSV text file "
                        "(if it is UTF-16 text, set [source] encoding = 'utf-16')")


def _reject_undecodable(batch: pa.RecordBatch, source: Source) -> None:
    """pyarrow infers `binary` for a column whose bytes are not valid text: say so instead."""
    for field in batch.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise ReadError(f"column {field.name!r} is not valid {source.encoding} text; "
                            "set [source] encoding to the file's encoding, e.g. 'latin-1'")


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
                "set [source] encoding to the file's encoding, e.g. 'latin-1'")
    if m := re.search(r"Expected (\d+) columns, got (\d+): (.*)", message):
        return (f"ragged row: expected {m[1]} columns, got {m[2]}: {m[3][:200]!r} "
                f"(delimiter is {source.delimiter!r})")
    if "Empty CSV file" in message:
        return "the file is empty"
    if m := re.search(r"In CSV column #(\d+): (.*)", message):
        index = int(m[1])
        column = repr(names[index]) if index < len(names) else f"#{index + 1}"
        return f"column {column}: {m[2][:300]}"
    return f"cannot parse as CSV: {message[:300]}"

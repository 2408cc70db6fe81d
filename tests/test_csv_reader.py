"""The CSV reader: options, encodings, compression, bounded blocks and clear errors."""

from __future__ import annotations

import gzip

import polars as pl
import pyarrow as pa
import pytest

from chute.errors import ReadError
from chute.formats.csv import read_csv
from chute.project import Source


def read(data: bytes, **options) -> pl.DataFrame:
    return pl.concat(list(read_csv(pa.py_buffer(data), Source(**options))))


def test_header_and_declared_types():
    df = read(b"d,x,s\n2020-01-02,1.5,a\n", columns={"d": "date", "x": "numeric(6,2)"})
    assert df.schema["d"] == pl.Date and df.schema["x"] == pl.Decimal(6, 2) and df.schema["s"] == pl.String


def test_headerless_with_declared_columns():
    df = read(b"1;a\n2;b\n", header=False, delimiter=";", columns={"id": "bigint", "name": "text"})
    assert df.columns == ["id", "name"] and df["id"].to_list() == [1, 2]


def test_headerless_without_columns_names_them():
    assert read(b"1,a\n", header=False).columns == ["f0", "f1"]


def test_latin1_when_declared():
    df = read("name\ncafé\n".encode("latin-1"), encoding="latin-1")
    assert df["name"].to_list() == ["café"]


def test_invalid_utf8_says_which_column_and_what_to_do():
    with pytest.raises(ReadError, match=r"column 'name' is not valid utf-8 text; set \[source\] encoding"):
        read("name\ncafé\n".encode("latin-1"))


def test_gzip_detected_by_content():
    assert read(gzip.compress(b"a\n1\n2\n"))["a"].to_list() == [1, 2]


def test_quoted_fields_with_delimiters_and_newlines():
    df = read(b'a,b\n"x, y","line1\nline2"\n')
    assert df.row(0) == ("x, y", "line1\nline2")


def test_huge_field():
    df = read(b"a,b\n" + b"x" * (8 << 20) + b",1\n")
    assert len(df["a"][0]) == 8 << 20


def test_blocks_are_bounded():
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * 2) for i in range(300_000))
    frames = list(read_csv(pa.py_buffer(data), Source(), block_bytes=1 << 20))
    assert len(frames) > 1 and sum(f.height for f in frames) == 300_000
    assert max(f.estimated_size() for f in frames) < 8 << 20


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"a,b\n", "header but no data rows"),
    (b"a,b\n1,2\n3\n", "ragged row: expected 2 columns, got 1"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    (b"a\nnot-a-date\n", "column 'a': CSV conversion error to date32"),
])
def test_bad_input_messages(data, message):
    options = {"columns": {"a": "date"}} if b"not-a-date" in data else {}
    with pytest.raises(ReadError, match=message.replace("(", r"\(")):
        read(data, **options)

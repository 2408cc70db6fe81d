"""The CSV reader: options, encodings, compression, bounded blocks and clear errors."""

from __future__ import annotations

import gzip
import io
import re

import polars as pl
import pyarrow as pa
import pytest

from chute.errors import ReadError
from chute.formats.csv import FIRST_BLOCK, read_csv
from chute.formats.reader import read_source
from chute.config.project import Source


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


def test_with_every_type_declared_the_first_block_is_small_and_else_it_decides_the_types():
    # 6.5 MB of whole numbers, then a column turns decimal
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * 2) for i in range(500_000))
    data += b"".join(b"%d,1.5\n" % i for i in range(40_000))
    declared = blocks(data, block=64 << 20, columns={"a": "bigint", "b": "double"})
    assert len(declared) == 2 and declared[0].height < 500_000 < sum(f.height for f in declared)
    assert declared[0].height * 4 <= 4 << 20  # at most the first 4 MB of lines of 4 bytes or more
    for columns in ({}, {"a": "bigint"}):  # 'b' is not declared: the first 16 MB decide its type
        inferred = blocks(data, block=64 << 20, columns=columns)
        assert len(inferred) == 1 and inferred[0].schema["b"] == pl.Float64


def test_a_block_parsed_on_every_core_keeps_newlines_inside_quoted_values():
    rows = b"".join(b'%d,"first line\nsecond line %d",x\n' % (i, i) for i in range(300_000))
    assert len(rows) > 8 << 20  # one block, over THREADED_BLOCK: cut into parts for the threads
    [frame] = blocks(b"id,text,tag\n" + rows, block=64 << 20)
    assert frame.height == 300_000 and frame["text"][123_456] == "first line\nsecond line 123456"
    assert set(frame["tag"]) == {"x"}


def test_a_quote_left_open_far_from_the_end_is_refused():
    rows = b"".join(b"%d,plain\n" % i for i in range(2, 100_000))
    with pytest.raises(ReadError, match="never closed: line 3"):
        read(b"id,size\n1,x\n" + b'2,"open\n' + rows)


def test_a_header_without_rows_is_no_rows_with_the_header_columns():
    frame = read(b"a,b\n", columns={"a": "date"})
    assert frame.height == 0 and frame.columns == ["a", "b"] and frame.schema["a"] == pl.Date


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"a,b\n1,2\n3\n", "ragged row: expected 2 columns, got 1"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this is a PNG image, not CSV text"),
    (b"a,b\n\x00\x01\x02,\x03\n", "binary data (NUL bytes): this is not a CSV text file"),
    (b"a\nnot-a-date\n", "column 'a': CSV conversion error to date32"),
    # pyarrow would read the rest of the file as the last field's value, PostgreSQL's COPY refuses it
    (b'a,b\n1,"unclosed\n2,3\n', "a quoted field is never closed: line 2 ('1,\"unclosed')"),
    (b"a,b,b\n1,2,3\n", "the header names column 'b' twice (columns 2 and 3)"),
])
def test_bad_input_messages(data, message):
    options = {"columns": {"a": "date"}} if b"not-a-date" in data else {}
    with pytest.raises(ReadError, match=re.escape(message)):
        read(data, **options)


def blocks(data: bytes, block: int = 1 << 20, **options) -> list[pl.DataFrame]:
    return list(read_csv(pa.py_buffer(data), Source(**options), block_bytes=block))


def test_quoted_newlines_are_never_split_between_blocks():
    rows = [b'%d,"first line\nsecond ""quoted"" line, %d",x' % (i, i) for i in range(40_000)]
    frames = blocks(b"id,text,tag\n" + b"\n".join(rows) + b"\n")
    df = pl.concat(frames)
    assert len(frames) > 1 and df.height == 40_000
    assert df["text"][12345] == 'first line\nsecond "quoted" line, 12345' and set(df["tag"]) == {"x"}


def test_stray_quote_inside_a_field_does_not_stop_the_blocks():
    data = b"id,size\n" + b'1,5" screen\n' + b"".join(b"%d,plain\n" % i for i in range(2, 400_000))
    frames = blocks(data, block=1 << 18)
    assert len(frames) > 2 and sum(f.height for f in frames) == 399_999
    assert frames[0]["size"][0] == '5" screen'


def test_a_quote_left_open_in_the_last_block_is_refused_and_a_stray_one_is_not():
    rows = b"".join(b"%d,plain\n" % i for i in range(2, 200_000))
    # The header, then a record per line from 2 up: line n holds value n; counted across the blocks.
    with pytest.raises(ReadError, match="never closed: line 200000 \\('200000,\"open'\\)"):
        blocks(b"id,size\n" + rows + b'200000,"open\n200001,x\n', block=1 << 18)
    frames = blocks(b"id,size\n" + rows + b'200000,5" screen\n', block=1 << 18)
    assert len(frames) > 2 and frames[-1]["size"][-1] == '5" screen'
    assert read(b'a,b\n1,"closed ""twice"""\n2,"x"y\n')["b"].to_list() == ['closed "twice"', "xy"]
    # An odd count from text after a closing quote and a stray quote: the check reads on past both.
    assert read(b'a,b\n1,"x"y\n2,5" screen\n')["b"].to_list() == ["xy", '5" screen']


def test_a_quote_left_open_past_the_first_block_is_named_by_its_line_in_the_whole_file():
    # Every type declared (a 4 MB first block), latin-1, and values with newlines: lines are not records.
    rows = "".join(f'{i},"Zoë\nÅngström"\n' for i in range(300_000)).encode("latin-1")
    data = b"id,name\n" + rows + b'300000,"open\n300001,x\n'
    assert len(data) > FIRST_BLOCK  # two blocks: the open quote is in the second
    with pytest.raises(ReadError, match="never closed: line 600002 "):
        read(data, columns={"id": "bigint", "name": "text"}, encoding="latin-1")


def test_text_that_starts_like_a_binary_format_is_read_as_csv():
    assert read(b"PAR1,PAR2\n1,2\n").to_dicts() == [{"PAR1": 1, "PAR2": 2}]
    assert read(b"%PDF version,n\n1.7,2\n")["%PDF version"].to_list() == [1.7]


def test_an_opener_is_called_once_when_the_lines_are_counted_anyway():
    rows = b"".join(b"%d,plain\n" % i for i in range(2, 200_000))
    data, calls = b"id,size\n" + rows + b'200000,"open\n200001,x\n', []

    def opener():
        calls.append(1)
        return io.BytesIO(data)

    rejects: list = []
    frames = list(read_source(opener, Source(), block_bytes=1 << 18, rejects=rejects))
    assert len(calls) == 1 and sum(f.height for f in frames) == 199_998
    assert [(r.line_number, r.reason.split(":")[0]) for r in rejects] == [(200_000, "unclosed quote")]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252"])
def test_other_encodings_across_blocks(encoding):
    text = "name,n\n" + "".join(f"Zoë Ångström {i},{i}\n" for i in range(100_000))
    frames = blocks(text.encode(encoding), encoding=encoding)
    df = pl.concat(frames)
    assert len(frames) > 1 and df.height == 100_000 and df["name"][99_999] == "Zoë Ångström 99999"


def test_last_row_without_newline_and_crlf():
    assert read(b"a,b\r\n1,2\r\n3,4")["b"].to_list() == [2, 4]


def test_types_of_the_first_block_hold_for_the_rest():
    data = b"a,b\n" + b"".join(b"%d,\n" % i for i in range(200_000)) + b"1,text\n"
    frames = blocks(data)
    assert frames[0].schema["a"] == pl.Int64 and frames[-1].schema["a"] == pl.Int64
    assert pl.concat(frames, how="vertical_relaxed")["b"].drop_nulls().to_list() == ["text"]


def test_invalid_bytes_in_a_declared_encoding():
    with pytest.raises(ReadError, match="not valid utf-16 text"):
        read("a\nx\n".encode("utf-16")[:-1], encoding="utf-16")


def test_plain_small_files_are_parsed_together_and_told_apart_by_count():
    from chute.formats.csv import read_together

    files = [b"a,b\n1,x\n2,y\n",                # together
             b"a,b\n3,\"q,uoted\"\n",           # a quote: a record may span lines, read alone
             b"a,b\n4,z\n",                     # together
             b"b,a\nw,5\n",                     # another header, read alone
             b"a,b\n",                          # no data rows: read alone (0 rows there)
             b"a,b\n6,v\n\n7,u\n",              # a blank line, read alone
             b"a,b\r\n8,t\r\n",                 # CRLF, read alone
             b"a,b\n9,s"]                       # no final newline, read alone
    chosen, rows, counts = read_together([pa.py_buffer(f) for f in files], Source())
    assert chosen == [0, 2] and counts == [2, 1]
    assert rows.to_dict(as_series=False) == {"a": [1, 2, 4], "b": ["x", "y", "z"]}
    assert read_together([pa.py_buffer(files[0]), pa.py_buffer(files[1])], Source()) is None  # one is not a batch
    # A value one file cannot convert fails the text: each file is then read alone, with its own error.
    assert read_together([pa.py_buffer(b"a\n1\n"), pa.py_buffer(b"a\nnope\n")], Source(columns={"a": "integer"})) is None
    assert read_together([pa.py_buffer(b"1,x\n"), pa.py_buffer(b"2,y\n3,z\n")],
                         Source(header=False, columns={"n": "integer", "s": "text"}))[2] == [1, 2]


def test_count_byte_counts_as_bytes_count_does_across_its_slices():
    from chute.formats.text import count_byte

    data = b'a,"b"\n' * 400_000  # 2.4 MB: three of count_byte's 1 MB slices
    for start, end in [(0, None), (1, None), (0, 1 << 20), ((1 << 20) - 3, (2 << 20) + 5), (7, 7)]:
        stop = len(data) if end is None else end
        assert count_byte(data, b"\n", start, end) == data.count(b"\n", start, stop)
        assert count_byte(memoryview(data)[start:stop], b'"') == data.count(b'"', start, stop)

"""JSON lines: Firehose-style newline-delimited JSON read in bounded blocks, nested objects
flattened, bad lines quarantined with their line number, gzip, big fields, empty files."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from chute.errors import ReadError
from chute.formats.reader import read_source
from chute.config.project import Source
from chute.formats.salvage import ROW_COLUMN, numbered
from conftest import write

TOML = """
[project]
name = "events"

[landing]
patterns = ["*.json", "*.json.gz", "*.jsonl"]

[pipeline]
input = "events"

[source]
format = "jsonl"
pii_columns = ["customer_email"]

[source.columns]
order_id = "bigint"
ts = "timestamptz"

[tables.events]
mode = "append"

[tables.events.columns]
order_id = "bigint"
ts = "timestamptz"
customer_id = "integer"
customer_email = "text"
amount = "numeric(10,2)"
tags = "text"
source_file = "text"
"""


def event(i: int, **extra) -> dict:
    return {"order_id": i, "ts": f"2024-05-01T10:00:{i % 60:02d}Z",
            "customer": {"id": i % 7, "email": f"user{i}@example.com"}, "amount": i * 1.25,
            "tags": ["a", "b"], **extra}


def lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@pytest.fixture
def events(tmp_path):
    root = tmp_path / "events"
    write(root / "chute.toml", TOML)
    (root / "landing").mkdir()
    return root


def read(path, **source) -> tuple[pl.DataFrame, list]:
    rejects: list = []
    frames = list(numbered(read_source(str(path), Source(format="jsonl", **source), 64 << 20, rejects)))
    return pl.concat(frames, how="diagonal_relaxed"), rejects


def test_nested_objects_are_flattened_and_arrays_kept_as_json(tmp_path):
    path = write(tmp_path / "a.jsonl", lines(event(1), event(2)))
    frame, rejects = read(path, columns={"order_id": "bigint", "ts": "timestamptz"})
    assert not rejects
    assert frame.columns == ["order_id", "ts", "customer_id", "customer_email", "amount", "tags", ROW_COLUMN]
    assert frame.get_column("customer_email").to_list() == ["user1@example.com", "user2@example.com"]
    assert frame.get_column("tags").to_list() == ['["a","b"]', '["a","b"]']
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    kept, _ = read(path, nested="json")
    assert json.loads(kept.get_column("customer")[0]) == {"id": 1, "email": "user1@example.com"}


def test_blocks_are_bounded_and_keep_line_numbers_and_first_types(tmp_path):
    body = lines(*(event(i) for i in range(1, 30001)))
    path = write(tmp_path / "big.jsonl", body)
    assert len(body) > 3 << 20  # more than three blocks of 1 MiB
    rejects: list = []
    frames = list(numbered(read_source(str(path), Source(format="jsonl"), 1 << 20, rejects)))
    assert len(frames) >= 3 and not rejects
    assert all(f.schema == frames[0].schema for f in frames)
    rows = pl.concat(frames)
    assert rows.height == 30000
    assert rows.get_column(ROW_COLUMN).to_list() == list(range(1, 30001))
    assert rows.get_column("order_id").to_list() == list(range(1, 30001))


def test_gzip_blank_lines_and_a_big_field(tmp_path):
    big = "x" * (9 << 20)  # one line longer than a block
    body = lines(event(1)) + b"\n   \n" + lines(event(2, note=big)) + b"\r\n" + lines(event(3))
    path = write(tmp_path / "f.json.gz", gzip.compress(body))
    frame, rejects = read(path)
    assert not rejects
    assert frame.get_column("order_id").to_list() == [1, 2, 3]
    assert frame.get_column(ROW_COLUMN).to_list() == [1, 4, 6]
    assert frame.get_column("note").to_list()[1] == big


def test_bad_lines_are_rejects_with_their_line_number(tmp_path):
    body = lines(event(1)) + b'{"order_id": 2, oops}\n' + b"[1, 2]\n" + b'{"order_id": 4, "n": "caf\xe9"}\n' \
        + lines(event(5, order_id="five")) + lines(event(6))
    path = write(tmp_path / "bad.jsonl", body)
    frame, rejects = read(path, columns={"order_id": "bigint"})
    assert frame.get_column("order_id").to_list() == [1, 6]
    assert [(r.line_number, r.column) for r in rejects] == [(2, None), (3, None), (4, None), (5, "order_id")]
    assert rejects[0].reason.startswith("not valid JSON")
    assert rejects[1].reason == "not a JSON object (a JSON array)"
    assert rejects[2].reason.startswith("not valid UTF-8 text")
    assert rejects[2].raw_record == '{"order_id": 4, "n": "caf\ufffd"}'
    assert (rejects[3].reason, rejects[3].value) == ("not a valid bigint", "five")
    with pytest.raises(ReadError, match="line 2: not valid JSON"):  # without a sink, the first bad line fails
        list(read_source(str(path), Source(format="jsonl")))


def test_a_key_with_numbers_and_text_reads_as_text(tmp_path):
    path = write(tmp_path / "m.jsonl", lines({"k": 1, "v": 1}, {"k": "x", "v": True}, {"k": {"a": 1}}))
    frame, rejects = read(path)
    assert not rejects
    assert frame.get_column("k").to_list()[:2] == ["1", "x"]
    assert frame.get_column("v").to_list() == ["1", "true", None]


@pytest.mark.parametrize("body, message", [(b"", "the file is empty"), (b"\n\n  \n", "no JSON records"),
                                           (gzip.compress(b""), "no JSON records")])
def test_an_empty_file_is_refused_clearly(tmp_path, body, message):
    path = write(tmp_path / "empty.jsonl", body)
    with pytest.raises(ReadError, match=message):
        read(path)


def test_run_loads_jsonl_and_quarantines_bad_lines(events, cli, query):
    write(events / "landing" / "2024" / "05" / "01" / "10" / "s-1.json.gz",
          gzip.compress(lines(event(1), event(2)) + b"not json\n" + lines(event(3))))
    write(events / "landing" / "2024" / "05" / "01" / "10" / "s-2.jsonl", lines(event(4, order_id="x"), event(5)))
    summary = json.loads(cli("run", "-p", events, "--json").output)
    assert summary["files_loaded"] == 2 and summary["rows_rejected"] == 2
    assert query("SELECT order_id, customer_id, amount::text, tags FROM events ORDER BY 1") == [
        (1, 1, "1.25", '["a","b"]'), (2, 2, "2.50", '["a","b"]'), (3, 3, "3.75", '["a","b"]'),
        (5, 5, "6.25", '["a","b"]')]
    rejects = query("SELECT file_name, line_number, check_name, reason, raw_record FROM chute.rejects ORDER BY 1, 2")
    assert [r[:3] for r in rejects] == [("2024/05/01/10/s-1.json.gz", 3, "parse"),
                                        ("2024/05/01/10/s-2.jsonl", 1, "type")]
    assert rejects[0][4].startswith("*** (line withheld")  # not JSON, and the file has PII columns
    assert "user4@example.com" not in rejects[1][4] and '"email": "***"' in rejects[1][4]
    assert query("SELECT name, status, rows_read, rows_loaded, rows_rejected FROM chute.files ORDER BY 1") == [
        ("2024/05/01/10/s-1.json.gz", "loaded_with_rejects", 4, 3, 1),
        ("2024/05/01/10/s-2.jsonl", "loaded_with_rejects", 2, 1, 1)]


def test_contract_rejects_point_at_their_json_line(events, cli, query):
    write(events / "chute.toml", (events / "chute.toml").read_text() + '\n[tables.events.contract.columns.amount]\nmin = 0\n')
    write(events / "landing" / "c.jsonl", lines(event(1)) + b"\n" + lines(event(2, amount=-1)))
    cli("run", "-p", events)
    [(line, row, raw)] = query("SELECT line_number, row_number, raw_record FROM chute.rejects")
    assert (line, row) == (3, 3)
    assert json.loads(raw)["amount"] == -1 and "user2@example.com" not in raw


def test_a_big_file_is_streamed_and_its_bad_lines_quarantined(events, cli, query):
    write(events / "chute.toml", (events / "chute.toml").read_text().replace(
        'format = "jsonl"', 'format = "jsonl"\nbatch_mb = 0.001'))
    write(events / "landing" / "big.jsonl", lines(event(1), event(2)) + b"{\n" + lines(event(3)))
    summary = json.loads(cli("run", "-p", events, "--json").output)
    assert summary["rows_loaded"] == 3 and summary["rows_rejected"] == 1
    assert query("SELECT line_number, check_name FROM chute.rejects") == [(3, "parse")]
    assert query("SELECT status, rows_read, rows_loaded FROM chute.files") == [("loaded_with_rejects", 4, 3)]

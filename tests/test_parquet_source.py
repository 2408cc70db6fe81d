"""[source] format = "parquet": landing files read in bounded batches; bad bytes fail the file alone."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from chute.formats.reader import read_source
from chute.config.project import Source


def parquet_bytes(table: pa.Table, **kwargs) -> pa.Buffer:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kwargs)
    return pa.py_buffer(sink.getvalue())


def test_read_in_bounded_batches():
    table = pa.table({"id": list(range(100_000)), "name": [f"row {i}" for i in range(100_000)]})
    data = parquet_bytes(table, row_group_size=20_000)
    frames = list(read_source(data, Source(format="parquet"), block_bytes=100_000))
    assert len(frames) > 5 and max(f.height for f in frames) < 20_000
    assert sum(f.height for f in frames) == 100_000 and frames[-1]["id"][-1] == 99_999


def test_empty_file_gives_its_columns():
    (frame,) = read_source(parquet_bytes(pa.table({"id": pa.array([], pa.int64())})), Source(format="parquet"))
    assert frame.columns == ["id"] and frame.height == 0


def test_a_bad_file_fails_alone(tmp_path, cli, db_url, query):
    (tmp_path / "chute.toml").write_text(
        '[project]\nname = "p"\n[landing]\npatterns = ["*.parquet"]\n[source]\nformat = "parquet"\n'
        '[pipeline]\ninput = "t"\n[tables.t]\n[tables.t.columns]\nid = "bigint"\n')
    (tmp_path / "landing").mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "landing" / "good.parquet")
    (tmp_path / "landing" / "bad.parquet").write_bytes(b"id\n1\n")
    summary = json.loads(cli("run", "-p", tmp_path, "--json", expect=1).output)
    outcome = {f["name"]: (f["status"], f["error"]) for f in summary["files"]}
    assert outcome["good.parquet"][0] == "loaded" and outcome["bad.parquet"][0] == "failed"
    assert "not a Parquet file" in outcome["bad.parquet"][1]
    assert query("SELECT id FROM t ORDER BY id") == [(1,), (2,)]

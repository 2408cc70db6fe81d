"""The extraction framework: [extract.NAME] config, partitioned part files written atomically,
watermarks kept in the ledger's schema, and the `chute extract` command."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chute.ledger import schema
from chute.errors import ConfigError
from chute.extract import parts
from chute.ledger import watermarks
from chute.extract.parts import PartWriter, partition_folder, utc_timestamps
from chute.config.project import project_from_dict
from chute.sources import open_zone

DB_SPEC = {"kind": "database", "url": "sqlite:///x.db", "table": "orders", "key": "order_id"}


def _project(tmp_path, **extract):
    return project_from_dict({"project": {"name": "shop"}, "landing": {"patterns": ["*.parquet"]},
                              "extract": extract or {"orders": DB_SPEC}}, tmp_path)


def test_into_defaults_to_the_extraction_name_and_format_to_parquet(tmp_path):
    spec = _project(tmp_path).extract["orders"]
    assert spec.into == "orders" and spec.file_format == "parquet" and spec.key == ["order_id"]
    other = _project(tmp_path, o={**DB_SPEC, "into": "db/orders", "format": "csv"}).extract["o"]
    assert other.into == "db/orders" and other.file_format == "csv"


@pytest.mark.parametrize("bad, message", [
    ({**DB_SPEC, "query": "select 1"}, "exactly one of table or query"),
    ({**DB_SPEC, "schedule": "every day"}, "not a cron expression"),
    ({**DB_SPEC, "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({**DB_SPEC, "into": "../escape"}, "into"),
    ({**DB_SPEC, "batch": 10}, "unknown key"),
    ({**DB_SPEC, "kind": "ftp"}, "kind"),
])
def test_bad_extract_config_names_the_key(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        _project(tmp_path, orders=bad)


def test_partition_folder_is_the_start_in_utc():
    sydney = timezone(timedelta(hours=10))
    started = datetime(2025, 7, 31, 0, 5, tzinfo=sydney)  # 2025-07-30 14:05 UTC
    assert partition_folder("orders", started) == "orders/year=2025/month=07/day=30/hhmm=1405"
    with pytest.raises(ValueError):
        partition_folder("orders", datetime(2025, 7, 31))


def test_timestamps_are_written_in_utc():
    paris = pa.array([datetime(2025, 1, 1, 12, 0)], pa.timestamp("us"))
    zoned = pa.array([datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)], pa.timestamp("us", "Asia/Tokyo"))
    out = utc_timestamps(pa.table({"naive": paris, "zoned": zoned}), naive_zone="Europe/Paris")
    assert out.schema.field("naive").type == pa.timestamp("us", "UTC")
    assert out.column("naive")[0].as_py() == datetime(2025, 1, 1, 11, 0, tzinfo=timezone.utc)  # CET = UTC+1
    assert out.column("zoned")[0].as_py() == datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_parts_land_in_the_run_folder_numbered_on_after_earlier_runs(tmp_path):
    project = _project(tmp_path)
    started = datetime(2025, 3, 4, 5, 6, 59, tzinfo=timezone.utc)
    first = PartWriter(project, project.extract["orders"], started)
    names = [first.write(pa.table({"order_id": [1, 2]})), first.write(pa.table({"order_id": [3]}))]
    assert names == ["orders/year=2025/month=03/day=04/hhmm=0506/orders_part1.parquet",
                     "orders/year=2025/month=03/day=04/hhmm=0506/orders_part2.parquet"]
    # A second run in the same minute must not overwrite the first one's parts.
    again = PartWriter(project, project.extract["orders"], started + timedelta(milliseconds=500))
    assert again.write(pa.table({"order_id": [4]})).endswith("orders_part3.parquet")
    assert pq.read_table(tmp_path / "landing" / names[0]).column("order_id").to_pylist() == [1, 2]
    assert [e.name for e in open_zone(project).list()] == [*names, again.files[0]]
    assert first.rows == 3 and first.files == names


def test_the_same_rows_give_the_same_bytes(tmp_path):
    rows = pa.table({"id": [1, 2], "at": pa.array([datetime(2025, 1, 1)] * 2, pa.timestamp("us"))})
    assert parts.encode(utc_timestamps(rows), "parquet") == parts.encode(utc_timestamps(rows), "parquet")


def test_parquet_parts_use_dictionaries_for_text_only_and_read_back_the_same(tmp_path):
    rows = pa.table({"id": pa.array(range(1000), pa.int64()), "price": [1.5] * 1000,
                     "status": ["placed", "delivered"] * 500, "note": [None, "x"] * 500,
                     "kind": pa.array(["a", "b"] * 500).dictionary_encode(),
                     "code": pa.array(["k1", "k2"] * 500, pa.string_view())})
    (tmp_path / "p.parquet").write_bytes(parts.encode(rows, "parquet"))
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: set(meta.column(i).encodings) for i in range(meta.num_columns)}
    assert [c for c, e in encodings.items() if "RLE_DICTIONARY" in e] == ["status", "note", "kind", "code"]
    assert encodings["id"] == encodings["price"] == {"RLE", "PLAIN"}
    assert pq.read_table(tmp_path / "p.parquet").cast(rows.schema).equals(rows)


def test_no_partial_part_is_ever_visible_in_the_zone(tmp_path, monkeypatch):
    """At the moment the bytes are complete but not yet renamed, the zone lists nothing."""
    project = _project(tmp_path)
    zone = open_zone(project)
    seen_before_rename = []
    real_replace = os.replace

    def replace(src, dst):
        assert os.path.getsize(src) > 0 and os.path.basename(src).startswith(".")
        seen_before_rename.append([e.name for e in zone.list()])
        real_replace(src, dst)

    monkeypatch.setattr(parts.os, "replace", replace)
    writer = PartWriter(project, project.extract["orders"], datetime.now(timezone.utc))
    writer.write(pa.table({"order_id": list(range(1000))}))
    writer.write(pa.table({"order_id": [1]}))
    assert seen_before_rename == [[], [writer.files[0]]]
    leftovers = [p for p in (tmp_path / "landing").rglob("*") if p.is_file()]
    assert sorted(p.relative_to(tmp_path / "landing").as_posix() for p in leftovers) == sorted(writer.files)


def test_watermark_is_kept_in_the_ledger_schema(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        schema.ensure_schema(conn)
        assert watermarks.get(conn, "shop", "orders") is None
        watermarks.set(conn, "shop", "orders", {"cursor": 5, "key": [7]})
        watermarks.set(conn, "other", "orders", {"cursor": 1})
        watermarks.set(conn, "shop", "orders", {"cursor": 9, "key": [2]})
        assert watermarks.get(conn, "shop", "orders") == {"cursor": 9, "key": [2]}
        assert watermarks.get(conn, "other", "orders") == {"cursor": 1}
        assert conn.execute("select count(*) from chute.watermarks").fetchone()[0] == 2
        assert watermarks.try_lock(conn, "shop", "orders")
        with psycopg.connect(db_url, autocommit=True) as other:
            assert not watermarks.try_lock(other, "shop", "orders")  # one run of an extraction at a time
        watermarks.unlock(conn, "shop", "orders")


def test_cli_extract_without_extractions_is_a_clear_error(tmp_path, cli, db_url):
    (tmp_path / "chute.toml").write_text('[project]\nname = "x"\n')
    result = cli("extract", "-p", tmp_path, expect=2)
    assert "configures no extraction" in result.output
    (tmp_path / "chute.toml").write_text('[project]\nname = "x"\n[extract.orders]\nkind = "database"\n'
                                         'url = "sqlite:///none.db"\ntable = "orders"\nkey = "id"\n')
    result = cli("extract", "-p", tmp_path, "nope", expect=2)
    assert "no extraction named 'nope'" in result.output and "orders" in result.output

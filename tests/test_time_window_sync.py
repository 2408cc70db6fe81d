"""Incremental sync by time window: `chute run --start-ts/--end-ts` loads only the files of
partition folders in the window, prunes the other folders by path, and stays exactly once.
Parquet parts written by the extraction framework load with [source] format = "parquet"."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from chute.extract.parts import PartWriter
from chute.config.project import load_project
from chute.sources import open_zone
from chute.sources.partitions import Window, list_window, span

TOML = """
[project]
name = "sync"
[landing]
patterns = ["*.parquet"]
[source]
format = "parquet"
[pipeline]
input = "orders"
[tables.orders]
mode = "merge"
primary_key = ["order_id"]
[tables.orders.columns]
order_id = "bigint"
placed_at = "timestamptz"
amount = "numeric(10,2)"
[extract.orders]
kind = "database"
url = "sqlite:///unused.db"
table = "orders"
key = "order_id"
"""

RUNS = [datetime(2025, 7, 30, 14, 5, tzinfo=timezone.utc), datetime(2025, 7, 30, 15, 10, tzinfo=timezone.utc),
        datetime(2025, 8, 2, 9, 0, tzinfo=timezone.utc)]


@pytest.fixture
def landed(tmp_path):
    """Three extraction runs' parts (ids 1-2, 3-4, 5-6) and one file outside any partition."""
    (tmp_path / "chute.toml").write_text(TOML)
    project = load_project(tmp_path)
    for n, started in enumerate(RUNS):
        writer = PartWriter(project, project.extract["orders"], started)
        for i in (2 * n + 1, 2 * n + 2):
            writer.write(pa.table({"order_id": [i], "placed_at": pa.array([started], pa.timestamp("us", "UTC")),
                                   "amount": pa.array([Decimal("9.99")], pa.decimal128(10, 2))}))
    loose = tmp_path / "landing" / "orders" / "loose"
    loose.mkdir()
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"order_id": [99], "placed_at": pa.array([RUNS[0]], pa.timestamp("us", "UTC")),
                             "amount": pa.array([Decimal(1)], pa.decimal128(10, 2))}), loose / "extra.parquet")
    return tmp_path


def ids(query) -> list[int]:
    return [r[0] for r in query("SELECT order_id FROM orders ORDER BY 1")]


def test_partition_spans():
    assert span(["orders", "year=2025", "month=07"]) == (datetime(2025, 7, 1, tzinfo=timezone.utc),
                                                       datetime(2025, 8, 1, tzinfo=timezone.utc))
    assert span(["year=2025", "month=12", "day=31", "hhmm=2359"])[1] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert span(["orders", "loose"]) is None


def test_window_run_loads_only_its_partitions_then_full_sync_the_rest_once(landed, cli, db_url, query, monkeypatch):
    visited = []
    real_scandir = os.scandir

    def scandir(path):
        visited.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    window = json.loads(cli("run", "-p", landed, "--start-ts", "2025-07-30T14:00", "--end-ts",
                            "2025-07-30T15:00:00+00:00", "--json").output)
    assert window["files_loaded"] == 2 and ids(query) == [1, 2]
    # Pruned by path: the August folder and the other hours were never listed.
    assert not any("month=08" in v or "hhmm=1510" in v for v in visited)
    assert any(v.endswith("hhmm=1405") for v in visited)

    again = json.loads(cli("run", "-p", landed, "--start-ts", "2025-07-30T14:00", "--end-ts", "2025-07-30T15:00",
                           "--json").output)
    assert again["files_loaded"] == 0 and again["unchanged"] == 2

    # An offset is honoured: 17:00+02:00 is 15:00 UTC, so this window is 15:00 UTC onwards.
    later = json.loads(cli("run", "-p", landed, "--start-ts", "2025-07-30T17:00:00+02:00", "--json").output)
    assert later["files_loaded"] == 4 and ids(query) == [1, 2, 3, 4, 5, 6]

    full = json.loads(cli("run", "-p", landed, "--json").output)
    assert full["files_loaded"] == 1 and ids(query) == [1, 2, 3, 4, 5, 6, 99]  # only the loose file was new
    assert query("SELECT amount, placed_at FROM orders WHERE order_id = 3")[0] == (Decimal("9.99"), RUNS[1])


def test_bad_window_is_a_clear_error(landed, cli, db_url):
    assert "is not a date or time" in cli("run", "-p", landed, "--start-ts", "last week", expect=2).output
    assert "--start-ts must be before --end-ts" in cli("run", "-p", landed, "--start-ts", "2025-08-01",
                                                       "--end-ts", "2025-07-01", expect=2).output


def test_s3_window_lists_only_folders_in_it(landed, aws, s3_bucket):
    from fixtures_aws import upload_folder

    client = aws.client("s3")
    upload_folder(client, landed / "landing", s3_bucket, "raw")
    text = (landed / "chute.toml").read_text().replace('[landing]\n', f'[landing]\npath = "s3://{s3_bucket}/raw"\n')
    (landed / "chute.toml").write_text(text)
    zone = open_zone(load_project(landed))
    listed = []
    real = zone.client.get_paginator

    def paginator(name):
        pages = real(name)
        original = pages.paginate

        def paginate(**kwargs):
            listed.append(kwargs["Prefix"])
            return original(**kwargs)
        pages.paginate = paginate
        return pages

    zone.client.get_paginator = paginator
    window = Window(datetime(2025, 7, 30, 15, tzinfo=timezone.utc), datetime(2025, 7, 31, tzinfo=timezone.utc))
    names = [e.name for e in list_window(zone, window)]
    assert names == ["orders/year=2025/month=07/day=30/hhmm=1510/orders_part1.parquet",
                     "orders/year=2025/month=07/day=30/hhmm=1510/orders_part2.parquet"]
    assert not any("month=08" in p or "hhmm=1405" in p for p in listed)

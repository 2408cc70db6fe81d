"""Database extraction against real databases: PostgreSQL (a source database in the test
cluster), SQLite and MariaDB. Keyset pages, watermarks, backfills, UTC timestamps."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chute.errors import ConfigError
from chute.extract import parts, run_extract
from chute.config.project import project_from_dict

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def project_for(tmp_path, **spec):
    spec = {"kind": "database", "key": "order_id", "cursor": "updated_at", "table": "orders", **spec}
    return project_from_dict({"project": {"name": "shop"}, "landing": {"patterns": ["*.parquet"]},
                              "extract": {"orders": spec}}, tmp_path)


def landed(project, files) -> pa.Table:
    return pa.concat_tables([pq.read_table(project.landing_path / f) for f in files])


def pg_source(url: str, rows: list[tuple]):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (order_id bigint PRIMARY KEY, updated_at timestamptz NOT NULL,"
                     " amount numeric(10,2), note text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)


def orders(ids, at=lambda i: T0 + timedelta(minutes=i)):
    return [(i, at(i), Decimal(f"{i}.25"), f"order {i}") for i in ids]


def test_pg_table_in_parts_of_batch_size_with_utc_timestamps(tmp_path, source_pg, db_url):
    pg_source(source_pg, orders(range(1, 26)))
    project = project_for(tmp_path, url=source_pg, batch_size=10)
    report = run_extract(project, "orders")
    assert report.ok and report.rows == 25 and len(report.files) == 3
    assert [pq.read_metadata(project.landing_path / f).num_rows for f in report.files] == [10, 10, 5]
    table = landed(project, report.files)
    assert table.column("order_id").to_pylist() == list(range(1, 26))
    assert table.schema.field("updated_at").type == pa.timestamp("us", "UTC")
    assert table.column("updated_at")[24].as_py() == T0 + timedelta(minutes=25)
    assert table.column("amount")[0].as_py() == Decimal("1.25")
    assert report.watermark_after == {"cursor": {"datetime": (T0 + timedelta(minutes=25)).isoformat()}, "key": [25]}
    with psycopg.connect(db_url) as conn:  # kept in the ledger's schema of the warehouse
        assert conn.execute("select value, last_rows, last_files from chute.watermarks").fetchone() == \
            (report.watermark_after, 25, 3)


def test_rows_sharing_a_cursor_value_across_a_page_boundary_each_come_once(tmp_path, source_pg, db_url):
    # 12 rows with one timestamp, pages of 5: boundaries fall inside the tie (a cursor-only
    # watermark would skip rows 6..12 or repeat 1..5 here).
    pg_source(source_pg, orders([40, 3, 17, 8, 1, 99, 23, 5, 61, 2, 11, 30], at=lambda i: T0))
    project = project_for(tmp_path, url=source_pg, batch_size=5)
    report = run_extract(project, "orders")
    assert [pq.read_metadata(project.landing_path / f).num_rows for f in report.files] == [5, 5, 2]
    assert landed(project, report.files).column("order_id").to_pylist() == [1, 2, 3, 5, 8, 11, 17, 23, 30, 40, 61, 99]
    # A later row with the same timestamp and a greater key is taken by the next run; nothing else is.
    pg_source(source_pg, orders([100], at=lambda i: T0))
    again = run_extract(project, "orders")
    assert landed(project, again.files).column("order_id").to_pylist() == [100]


def test_rows_inserted_during_an_extraction_are_taken_exactly_once(tmp_path, source_pg, db_url, monkeypatch):
    pg_source(source_pg, orders(range(1, 21)))
    project = project_for(tmp_path, url=source_pg, batch_size=4)
    real_write = parts.PartWriter.write
    inserted = []

    def write_then_insert(self, table):
        name = real_write(self, table)
        if not inserted:  # after the first page: one row inside this run's range, two past its end
            pg_source(source_pg, [(15_000, T0 + timedelta(minutes=10, seconds=30), Decimal(1), "inside"),
                                  (50_000, T0 + timedelta(hours=5), Decimal(1), "later")])
            inserted.append(True)
        return name

    monkeypatch.setattr(parts.PartWriter, "write", write_then_insert)
    first = run_extract(project, "orders")
    first_ids = landed(project, first.files).column("order_id").to_pylist()
    # The run stops at the last row that existed when it started; the row inside that range is in it.
    assert first_ids == [*range(1, 11), 15_000, *range(11, 21)]
    second = run_extract(project, "orders")
    second_ids = landed(project, second.files).column("order_id").to_pylist()
    assert second_ids == [50_000]
    assert sorted(first_ids + second_ids) == sorted([*range(1, 21), 15_000, 50_000])


def test_incremental_runs_take_only_rows_past_the_watermark(tmp_path, source_pg, db_url):
    pg_source(source_pg, orders(range(1, 11)))
    project = project_for(tmp_path, url=source_pg, batch_size=100)
    first = run_extract(project, "orders")
    assert first.rows == 10 and first.watermark_before is None
    nothing = run_extract(project, "orders")
    assert nothing.rows == 0 and nothing.files == [] and nothing.watermark_after == first.watermark_after
    pg_source(source_pg, orders(range(11, 14)))
    third = run_extract(project, "orders")
    assert third.watermark_before == first.watermark_after
    assert landed(project, third.files).column("order_id").to_pylist() == [11, 12, 13]
    assert third.watermark_after["key"] == [13]


def test_backfill_takes_its_window_and_leaves_the_watermark(tmp_path, source_pg, db_url, cli):
    pg_source(source_pg, orders(range(1, 31)))
    project = project_for(tmp_path, url=source_pg, batch_size=7)
    (tmp_path / "chute.toml").write_text(
        f'[project]\nname = "shop"\n[landing]\npatterns = ["*.parquet"]\n[extract.orders]\nkind = "database"\n'
        f'url = "{source_pg}"\ntable = "orders"\nkey = "order_id"\ncursor = "updated_at"\nbatch_size = 7\n')
    full = run_extract(project, "orders")
    window = (T0 + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2))).isoformat()  # any offset
    result = cli("extract", "-p", tmp_path, "orders", "--since", window, "--until", "2025-01-01T12:09:00", "--json")
    import json

    (report,) = json.loads(result.output)
    assert report["backfill"] and report["watermark_after"] == full.watermark_after
    assert landed(project, report["files"]).column("order_id").to_pylist() == [5, 6, 7, 8]
    bad = cli("extract", "-p", tmp_path, "--since", "yesterday", expect=1)
    assert "--since 'yesterday' is not a datetime" in bad.output


def test_query_source_and_naive_timestamps_in_the_declared_zone(tmp_path, source_pg, db_url):
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE products (product_id int PRIMARY KEY, name text)")
        conn.execute("CREATE TABLE orders (order_id int PRIMARY KEY, product_id int, placed timestamp NOT NULL)")
        conn.execute("INSERT INTO products VALUES (1, 'Banana'), (2, 'Lime')")
        conn.execute("INSERT INTO orders VALUES (10, 1, '2025-03-01 09:00'), (11, 2, '2025-03-01 09:00'),"
                     " (12, 1, '2025-07-01 09:00')")
    query = "SELECT o.order_id, o.placed, p.name FROM orders o JOIN products p USING (product_id)"
    project = project_for(tmp_path, url=source_pg, table=None, query=query, cursor="placed", batch_size=2,
                          timezone="Australia/Sydney")
    report = run_extract(project, "orders")
    table = landed(project, report.files)
    assert table.column("name").to_pylist() == ["Banana", "Lime", "Banana"]
    # Sydney: UTC+11 in March (daylight time), UTC+10 in July.
    assert table.column("placed").to_pylist() == [datetime(2025, 2, 28, 22, tzinfo=timezone.utc)] * 2 + \
        [datetime(2025, 6, 30, 23, tzinfo=timezone.utc)]


def test_sqlite_text_timestamps_ties_and_watermark(tmp_path, db_url):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL, note TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                         [(i, "2025-01-01 10:00:00" if i <= 6 else f"2025-01-02 10:00:0{i - 6}", f"n{i}")
                          for i in range(1, 10)])
    project = project_for(tmp_path, url=f"sqlite:///{path}", batch_size=4)
    report = run_extract(project, "orders")
    table = landed(project, report.files)
    assert table.column("order_id").to_pylist() == list(range(1, 10))
    assert table.column("updated_at")[0].as_py() == datetime(2025, 1, 1, 10, tzinfo=timezone.utc)
    assert report.watermark_after == {"cursor": "2025-01-02 10:00:03", "key": [9]}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO orders VALUES (10, '2025-01-02 10:00:03', 'same time, later key')")
    again = run_extract(project, "orders")
    assert landed(project, again.files).column("order_id").to_pylist() == [10]


def test_mariadb_table_incremental_with_ties(tmp_path, source_mariadb, db_url):
    url, execute = source_mariadb
    execute("CREATE TABLE orders (order_id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, "
            "amount DECIMAL(10,2), note VARCHAR(50))")
    for i in range(1, 12):
        execute("INSERT INTO orders VALUES (%s, %s, %s, %s)",
                (i, datetime(2025, 1, 1, 10) if i <= 5 else datetime(2025, 1, 1, 10, i), Decimal("2.50"), f"o{i}"))
    project = project_for(tmp_path, url=url, batch_size=3)
    report = run_extract(project, "orders")
    assert report.ok, report.error
    table = landed(project, report.files)
    assert table.column("order_id").to_pylist() == list(range(1, 12)) and len(report.files) == 4
    assert table.column("updated_at")[0].as_py() == datetime(2025, 1, 1, 10, tzinfo=timezone.utc)
    execute("INSERT INTO orders VALUES (12, %s, 1, 'new')", (datetime(2025, 1, 2),))
    again = run_extract(project, "orders")
    assert landed(project, again.files).column("order_id").to_pylist() == [12]


def test_source_errors_are_reported_clearly(tmp_path, source_pg, db_url, monkeypatch):
    """Each failure is in the report (the CLI prints it and exits 1), never a traceback."""
    pg_source(source_pg, orders([1]))

    def error_of(**spec):
        report = run_extract(project_for(tmp_path, **spec), "orders")
        assert not report.ok and report.files == [] and report.watermark_after is None
        return report.error

    assert "no table 'nope'" in error_of(url=source_pg, table="nope")
    assert "missing_col not among the columns" in error_of(url=source_pg, cursor="missing_col")
    assert "$SRC_URL is not set" in error_of(url="env:SRC_URL")
    assert "no SQLAlchemy dialect" in error_of(url="nosuchdb://h/x")
    assert "division by zero" in error_of(url=source_pg, table=None,
                                          query="SELECT order_id, updated_at FROM orders WHERE 1/0 = 1")
    closed = source_pg.replace("@127.0.0.1:", "@127.0.0.1:1")  # a port nobody listens on
    monkeypatch.setenv("SRC_URL", closed)
    message = error_of(url="env:SRC_URL")
    assert message.startswith("cannot reach the source database") and "***" in message
    assert closed.split(":")[2].split("@")[0] not in message  # the password is not shown

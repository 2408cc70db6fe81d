"""The ingest example end to end: a source PostgreSQL database -> `chute extract`
into the partitioned landing zone -> `chute run` into the warehouse; new and changed source
rows are extracted again by watermark and merged; nothing is loaded twice."""

from __future__ import annotations

import importlib.util
import json

import psycopg
import pytest
from sqlalchemy.engine import make_url

from chute.examples.scaffold import create_project

ORDER_COLUMNS = ("order_id, user_id, order_number, order_dow, order_hour_of_day, days_since_prior_order, "
                 "product_count, total, status, placed_at, updated_at")
PRODUCT_COLUMNS = "product_id, product_name, aisle, department, price, updated_at"


@pytest.fixture
def ingest(tmp_path, source_pg, db_url):
    """An ingest project whose source is the test's own database on the test cluster."""
    folder = tmp_path / "ingest"
    create_project(folder, "ingest", files=0)
    name = make_url(source_pg).database
    toml = folder / "chute.toml"
    toml.write_text(toml.read_text().replace("warehouse:ingest_source", f"warehouse:{name}"))
    spec = importlib.util.spec_from_file_location("ingest_generate", folder / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return folder, lambda days: generator.generate(folder, files=days, seed=3, url=source_pg)


def same(source_pg, query, table, columns, key) -> bool:
    with psycopg.connect(source_pg) as conn:
        source = conn.execute(f"SELECT {columns} FROM {table} ORDER BY {key}").fetchall()
    warehouse = query(f"SELECT {columns} FROM {table} ORDER BY {key}")
    return len(source) > 0 and source == warehouse


def test_source_to_landing_to_warehouse_incrementally(ingest, source_pg, cli, query):
    folder, generate = ingest
    first = generate(3)
    assert first["rows"] == 900

    extracted = {r["name"]: r for r in json.loads(cli("extract", "-p", folder, "--json").output)}
    assert extracted["orders"]["rows"] == 900 and len(extracted["orders"]["files"]) == 1
    assert extracted["products"]["rows"] == 500
    assert all(f.startswith("orders/year=") and "/hhmm=" in f for f in extracted["orders"]["files"])
    run = json.loads(cli("run", "-p", folder, "--json").output)
    assert run["status"] == "succeeded" and run["files_loaded"] == 2
    assert same(source_pg, query, "orders", ORDER_COLUMNS, "order_id")
    assert same(source_pg, query, "products", PRODUCT_COLUMNS, "product_id")

    # More days of orders, and changes to rows extracted already: only those are extracted.
    more = generate(8)
    assert more["rows"] == 2400 and more["changed"] > 0
    again = {r["name"]: r for r in json.loads(cli("extract", "-p", folder, "--json").output)}
    assert again["orders"]["rows"] == 2400 + more["changed"] - 5  # new orders + delivered/cancelled ones
    assert again["products"]["rows"] == 5  # the repriced products, nothing else
    assert len(again["orders"]["files"]) == 2  # batch_size = 2000 rows per part
    assert again["orders"]["watermark_before"] == extracted["orders"]["watermark_after"]
    run = json.loads(cli("run", "-p", folder, "--json").output)
    assert run["files_loaded"] == 3 and run["unchanged"] == 2
    assert same(source_pg, query, "orders", ORDER_COLUMNS, "order_id")
    assert same(source_pg, query, "products", PRODUCT_COLUMNS, "product_id")

    # Nothing new: the extraction writes nothing and a run loads nothing.
    idle = json.loads(cli("extract", "-p", folder, "--json").output)
    assert [r["rows"] for r in idle] == [0, 0]
    last = json.loads(cli("run", "-p", folder, "--json").output)
    assert last["files_loaded"] == 0 and last["rows_loaded"] == 0 and last["unchanged"] == 5


def test_init_with_example_ingest_creates_its_source(tmp_path, db_url, cli, pg_cluster):
    folder = tmp_path / "shop"
    try:
        out = cli("init", folder, "--example", "ingest", "--files", "1").output
        assert "Source database ingest_source: 300 new orders" in out
        assert (folder / "chute.toml").exists() and (folder / "pipeline.py").exists()
        reports = json.loads(cli("extract", "-p", folder, "--json").output)
        assert sorted((r["name"], r["rows"]) for r in reports) == [("orders", 300), ("products", 500)]
    finally:
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "ingest_source" WITH (FORCE)')

"""The café example end to end against a real PostgreSQL: a 3NF schema with
foreign keys, row counts computed independently from the CSV files, no personal data
anywhere in the database, and re-uploads or overlapping files that add no row."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from collections import Counter
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from chute.examples.scaffold import create_project
from conftest import shared, write

TABLES = ["branches", "products", "variants", "transactions", "transaction_items"]
ITEM = re.compile(r"^(\S+) (.+?)(?: - (.+?))? - (\d+\.\d{2})$")


@pytest.fixture
def cafe(tmp_path):
    folder = tmp_path / "cafe"
    create_project(folder, "cafe", files=0)
    generator(folder).generate(folder, files=6, seed=3, branches=3)  # two days of three branches
    return folder


def generator(folder):
    """The generate.py that `chute init` copied into the project."""
    spec = importlib.util.spec_from_file_location("cafe_generate", folder / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected(landing) -> dict:
    """What the tables must hold, from the files by plain csv + re (not the pipeline's code).

    An order is its branch, minute, items, total and payment; n identical orders in one file
    are n orders, and a file that repeats another's orders adds only the ones beyond them.
    """
    orders: Counter = Counter()
    for path in sorted(landing.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            here = Counter((r[1], r[0], r[3], Decimal(r[4]), r[5]) for r in csv.reader(f))
        orders |= here  # per order, the most copies any one file holds
    branches, products, variants = set(), set(), set()
    lines = quantity = 0
    revenue = Decimal(0)
    for (branch, _, items, total, _), n in orders.items():
        branches.add(branch)
        kinds = set()
        for item in items.split(","):
            size, name, variant, price = ITEM.match(item.strip()).groups()
            products.add((name, size, Decimal(price)))
            if variant:
                variants.add(variant)
            kinds.add((name, size, price, variant))
            quantity += n
        lines += len(kinds) * n
        revenue += total * n
    return {"branches": len(branches), "products": len(products), "variants": len(variants),
            "transactions": sum(orders.values()), "transaction_items": lines, "quantity": quantity,
            "revenue": revenue}


def counts(query) -> dict:
    out = {t: query(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    out["quantity"] = query("SELECT sum(quantity) FROM transaction_items")[0][0]
    out["revenue"] = query("SELECT sum(total_price) FROM transactions")[0][0]
    return out


def snapshot(query) -> dict:
    return {t: query(f"SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM {t} x")[0][0] for t in TABLES}


def personal_data(landing) -> tuple[set[str], set[str]]:
    names, cards = set(), set()
    for path in landing.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.reader(f):
                names.add(r[2])
                if r[6]:
                    cards.add(r[6])
    return names, cards


def assert_no_personal_data(db_url, landing):
    names, cards = personal_data(landing)
    assert names and cards
    found = re.compile("|".join(re.escape(v) for v in sorted(names | cards, key=len, reverse=True)))
    with psycopg.connect(db_url) as conn:
        columns = conn.execute("""SELECT table_schema, table_name, column_name FROM information_schema.columns
                                  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')""").fetchall()
        assert columns
        assert not [c for c in columns if re.search(r"customer|card", c[2], re.I)]
        tables = {(s, t) for s, t, _ in columns}
        for schema, table in sorted(tables):
            rows = conn.execute(sql.SQL("SELECT x::text FROM {}.{} x").format(
                sql.Identifier(schema), sql.Identifier(table))).fetchall()
            leaked = [r[0] for r in rows if found.search(r[0])]
            assert not leaked, f"personal data in {schema}.{table}: {leaked[:2]}"


def assert_foreign_keys_hold(query):
    fks = query("""SELECT count(*) FROM information_schema.table_constraints
                   WHERE constraint_type = 'FOREIGN KEY' AND table_schema = 'public'""")[0][0]
    assert fks == 4
    assert query("""SELECT count(*) FROM transactions t LEFT JOIN branches b USING (branch_id)
                    WHERE b.branch_id IS NULL""")[0][0] == 0
    assert query("""SELECT count(*) FROM transaction_items i
                    LEFT JOIN transactions t USING (transaction_id) LEFT JOIN products p USING (product_id)
                    LEFT JOIN variants v USING (variant_id)
                    WHERE t.transaction_id IS NULL OR p.product_id IS NULL
                       OR (i.variant_id IS NOT NULL AND v.variant_id IS NULL)""")[0][0] == 0
    # every order's lines add up to its total
    assert query("""SELECT count(*) FROM (SELECT t.transaction_id FROM transactions t
                    JOIN transaction_items i USING (transaction_id) JOIN products p USING (product_id)
                    GROUP BY t.transaction_id, t.total_price
                    HAVING sum(p.price * i.quantity) <> t.total_price) bad""")[0][0] == 0


def test_generated_files_load_into_3nf(cafe, cli, query, db_url):
    summary = json.loads(cli("run", "-p", cafe, "--json").output)
    assert summary["status"] == "succeeded" and summary["files_loaded"] == 6
    assert counts(query) == expected(cafe / "landing")
    assert_foreign_keys_hold(query)
    assert_no_personal_data(db_url, cafe / "landing")


def test_reupload_and_overlapping_files_of_a_branch_add_no_rows(cafe, cli, query):
    landing = cafe / "landing"
    cli("run", "-p", cafe)
    before = snapshot(query)
    first = sorted(landing.glob("leicester_*.csv"))[0]

    # The same file again under another name: recognised by content, not loaded twice.
    shutil.copy(first, landing / "leicester_resent.csv")
    summary = json.loads(cli("run", "-p", cafe, "--json").output)
    assert summary["files_skipped"] == 1 and snapshot(query) == before

    # A second export of the same branch that repeats half of the first file's orders.
    rows = first.read_text(encoding="utf-8").splitlines(keepends=True)
    others = sorted(landing.glob("london_soho_*.csv"))[0].read_text(encoding="utf-8").splitlines(keepends=True)
    extra = [line.replace("London Soho", "Leicester").replace("/12/2024", "/01/2025") for line in others[:20]]
    write(landing / "leicester_second_export.csv", "".join(rows[: len(rows) // 2] + extra))
    summary = json.loads(cli("run", "-p", cafe, "--json").output)
    assert summary["files_loaded"] == 1
    assert counts(query) == expected(landing)

    # Loading everything again from scratch gives the same tables, ids included.
    after = snapshot(query)
    for table in reversed(TABLES):
        query(f"DELETE FROM {table} RETURNING 1")
    query("DELETE FROM chute.files RETURNING 1")
    cli("run", "-p", cafe)
    assert snapshot(query) == after


def test_real_cafe_files(tmp_path, cli, query, db_url):
    folder = tmp_path / "cafe"
    create_project(folder, "cafe", files=0)
    for path in shared("coffee").glob("*.csv"):
        shutil.copy(path, folder / "landing" / path.name)
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["status"] == "succeeded" and summary["files_loaded"] == 4
    want = expected(folder / "landing")
    assert counts(query) == want and want["branches"] == 4
    assert {r[0] for r in query("SELECT branch_name FROM branches")} == {
        "Leicester", "London Piccadilly", "London Soho", "Sheffield"}
    assert_foreign_keys_hold(query)
    assert_no_personal_data(db_url, folder / "landing")


def test_init_cafe_from_the_cli(tmp_path, cli):
    out = json.loads(cli("init", tmp_path / "c", "--example", "cafe", "--files", "3", "--json").output)
    assert out["example"] == "cafe" and out["data"]["files"] == 3
    assert len(list((tmp_path / "c" / "landing").glob("*.csv"))) == 3

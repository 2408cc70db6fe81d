"""Create and fill the SOURCE database of the chute "ingest" example: a grocery shop's
`products` and `orders`, shaped like the public Instacart orders data.

    products(product_id, product_name, aisle, department, price, updated_at)
    orders(order_id, user_id, order_number, order_dow, order_hour_of_day,
           days_since_prior_order, product_count, total, status, placed_at, updated_at)

Each call adds DAYS more days of orders after the latest one and, from the second call on,
changes a few things already extracted (orders delivered, product prices), each with a newer
`updated_at`: what an incremental extraction must pick up. Run::

    python generate.py PROJECT_DIR [--days 14] [--seed 42] [--source-url URL]

The source database is `ingest_source` on the project's warehouse server (chute.toml's
`url = "warehouse:ingest_source"`), or the database at --source-url. Deterministic per seed
and call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

SOURCE_DB = "ingest_source"
FIRST_DAY = dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)
ORDERS_PER_DAY = 300
USERS = 2_000

DEPARTMENTS = {
    "produce": ["fresh fruits", "fresh vegetables", "packaged vegetables fruits", "fresh herbs"],
    "dairy eggs": ["yogurt", "milk", "eggs", "packaged cheese", "butter"],
    "snacks": ["chips pretzels", "crackers", "cookies cakes", "nuts seeds dried fruit"],
    "beverages": ["water seltzer sparkling water", "juice nectars", "soft drinks", "tea", "coffee"],
    "bakery": ["bread", "breakfast bakery", "tortillas flat bread"],
    "pantry": ["baking ingredients", "spices seasonings", "oils vinegars", "condiments"],
    "frozen": ["frozen produce", "frozen meals", "ice cream ice", "frozen breakfast"],
    "household": ["paper goods", "cleaning products", "dish detergents"],
}
WORDS = ["Organic", "Banana", "Strawberries", "Baby Spinach", "Hass Avocado", "Large Lemon", "Whole Milk",
         "Greek Yogurt", "Sparkling Water", "Sourdough", "Extra Virgin Olive Oil", "Honeycrisp Apple",
         "Cage Free Eggs", "Cheddar", "Almond Milk", "Raspberries", "Blueberries", "Garlic", "Limes",
         "Seedless Cucumber", "Unsalted Butter", "Tortilla Chips", "Cold Brew", "Green Tea", "Peanut Butter"]
STATUSES = ["placed", "picking", "delivered", "cancelled"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    product_id   integer PRIMARY KEY,
    product_name text NOT NULL,
    aisle        text NOT NULL,
    department   text NOT NULL,
    price        numeric(8,2) NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id               bigint PRIMARY KEY,
    user_id                integer NOT NULL,
    order_number           integer NOT NULL,
    order_dow              smallint NOT NULL,
    order_hour_of_day      smallint NOT NULL,
    days_since_prior_order numeric(4,1),
    product_count          integer NOT NULL,
    total                  numeric(10,2) NOT NULL,
    status                 text NOT NULL,
    placed_at              timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_updated ON orders (updated_at, order_id);
CREATE INDEX IF NOT EXISTS products_updated ON products (updated_at, product_id);
"""


def source_url(project_dir: Path) -> str:
    """`ingest_source` on the project's warehouse server (created when missing)."""
    from chute.config.project import load_project
    from chute.db.resolve import resolve_database
    from sqlalchemy.engine import make_url

    warehouse = resolve_database(load_project(project_dir), None, project_dir)
    server = make_url(warehouse)
    with psycopg.connect(server.set(database="postgres").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SOURCE_DB,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SOURCE_DB)))
    return server.set(database=SOURCE_DB).render_as_string(hide_password=False)


def generate(out_dir: Path, files: int = 14, seed: int = 42, top: int | None = None,
             url: str | None = None) -> dict:
    """Add `files` days of orders (and, after the first call, some changes); return a summary."""
    out_dir = Path(out_dir)
    url = url or source_url(out_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        last_day, next_id = conn.execute(
            "SELECT max(placed_at), coalesce(max(order_id), 0) + 1 FROM orders").fetchone()
        rng = np.random.default_rng([seed, next_id])
        with conn.transaction():
            products = _products(conn, rng)
            start = FIRST_DAY if last_day is None else \
                dt.datetime.combine(last_day.date() + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
            changed = _changes(conn, rng, start) if last_day is not None else 0
            orders = _orders(conn, rng, products, start, files, next_id)
    return {"files": 0, "rows": orders, "changed": changed, "source": SOURCE_DB,
            "message": f"Source database {SOURCE_DB}: {orders:,} new orders over {files} days"
                       + (f", {changed} rows changed" if changed else "")
                       + f", {len(products)} products. Next: chute extract, then chute run"}


def _products(conn, rng) -> dict[int, Decimal]:
    """The catalogue (made once): product_id -> price."""
    existing = dict(conn.execute("SELECT product_id, price FROM products").fetchall())
    if existing:
        return existing
    rows = []
    aisles = [(d, a) for d, names in DEPARTMENTS.items() for a in names]
    for pid in range(1, 501):
        department, aisle = aisles[int(rng.integers(len(aisles)))]
        words = rng.choice(WORDS, size=2, replace=False)
        name = f"{words[0]} {words[1]} {int(rng.integers(1, 40)) * 50}g"
        price = Decimal(f"{rng.uniform(0.5, 25):.2f}")
        rows.append((pid, name, aisle, department, price, FIRST_DAY))
    with conn.cursor().copy("COPY products FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return {r[0]: r[4] for r in rows}


def _orders(conn, rng, products: dict[int, Decimal], start: dt.datetime, days: int, next_id: int) -> int:
    prices = np.array([float(p) for p in products.values()])
    order_numbers = dict(conn.execute("SELECT user_id, max(order_number) FROM orders GROUP BY user_id").fetchall())
    count = 0
    with conn.cursor().copy("COPY orders FROM STDIN") as copy:
        for day in range(days):
            for _ in range(ORDERS_PER_DAY):
                user = int(rng.integers(1, USERS + 1))
                number = order_numbers.get(user, 0) + 1
                order_numbers[user] = number
                # Most orders in the day (7h-22h), as in the Instacart data.
                at = start + dt.timedelta(days=day, hours=int(rng.integers(7, 23)),
                                          minutes=int(rng.integers(60)), seconds=int(rng.integers(60)))
                items = int(rng.integers(1, 25))
                total = Decimal(f"{prices[rng.integers(len(prices), size=items)].sum():.2f}")
                prior = None if number == 1 else Decimal(f"{min(30, int(rng.integers(1, 31))):.1f}")
                copy.write_row((next_id + count, user, number, at.weekday(), at.hour, prior, items, total,
                                "placed", at, at))
                count += 1
    return count


def _changes(conn, rng, when: dt.datetime) -> int:
    """Some orders delivered or cancelled and a few prices changed since the last call, stamped
    `when` (the start of the new days): newer than any watermark of the rows before."""
    ids = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE status = 'placed' ORDER BY order_id")]
    picked = sorted(int(i) for i in rng.choice(ids, size=min(len(ids), 50), replace=False)) if ids else []
    for i in picked:
        conn.execute("UPDATE orders SET status = %s, updated_at = %s WHERE order_id = %s",
                     (STATUSES[2] if rng.random() < 0.9 else STATUSES[3], when, i))
    products = [int(p) for p in rng.choice(500, size=5, replace=False) + 1]
    for pid in products:
        conn.execute("UPDATE products SET price = round(price * 1.05, 2), updated_at = %s WHERE product_id = %s",
                     (when, pid))
    return len(picked) + len(products)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project_dir", type=Path, nargs="?", default=Path("."))
    parser.add_argument("--days", type=int, default=14, help="days of orders to add (300 a day)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--source-url", help="the source database (default: ingest_source on the warehouse server)")
    args = parser.parse_args(argv)
    summary = generate(args.project_dir, files=args.days, seed=args.seed, url=args.source_url)
    print(summary["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate café order files in the CoffeETL format for the chute "cafe" example.

Each file is one branch's orders for one day, as the tills export them:

    OUT_DIR/landing/<branch>_<DD-MM-YYYY>_09-00-00.csv

headerless, seven columns: `timestamp (DD/MM/YYYY HH:MM), branch, customer_name, items,
total_price, payment_type (CARD/CASH), card_number` (empty for cash). Items are one quoted,
comma-separated field: `Large Flavoured hot chocolate - Vanilla - 2.90, Regular Americano - 1.95`;
the same item may appear twice in one order. Names and card numbers are made up.

Run::

    python generate.py OUT_DIR [--files 40] [--branches 8] [--seed 42]

Files go round the branches, then on to the next day. Output is deterministic per seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import polars as pl

# (product, variant or None, regular price, large price): the real menu's shape.
MENU = [
    ("Americano", None, "1.95", "2.25"),
    ("Cortado", None, "2.05", "2.35"),
    ("Espresso", None, "1.50", "1.80"),
    ("Filter coffee", None, "1.50", "1.80"),
    ("Flavoured hot chocolate", "Vanilla", "2.60", "2.90"),
    ("Flavoured iced latte", "Caramel", "2.75", "3.25"),
    ("Flavoured iced latte", "Vanilla", "2.75", "3.25"),
    ("Flavoured latte", "Hazelnut", "2.55", "2.85"),
    ("Frappes", "Coffee", "2.75", "3.25"),
    ("Iced latte", None, "2.35", "2.85"),
    ("Smoothies", "Carrot Kick", "2.00", "2.50"),
    ("Speciality Tea", "Camomile", "1.30", "1.60"),
    ("Speciality Tea", "Peppermint", "1.30", "1.60"),
    ("Latte", None, "2.15", "2.45"),
    ("Mocha", None, "2.30", "2.70"),
    ("Flavoured latte", "Caramel", "2.55", "2.85"),
]
BRANCHES = ["Leicester", "London Soho", "London Piccadilly", "Sheffield", "Chesterfield", "Uppingham",
            "Isle of Wight", "Birmingham", "Manchester", "Leeds", "Bristol", "Nottingham", "York", "Bath",
            "Cambridge", "Oxford", "Brighton", "Norwich", "Exeter", "Durham"]
FIRST = ["Esther", "Joe", "William", "David", "Carol", "James", "Irene", "Barbara", "Christina", "Mary",
         "John", "Patricia", "Robert", "Linda", "Michael", "Susan", "Thomas", "Karen", "Daniel", "Nancy"]
LAST = ["Pointer", "Bartz", "Thorne", "Marinelli", "Hill", "Justice", "Brandt", "Sachs", "Swanson", "Duffy",
        "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright", "Green", "Hall"]
FIRST_DAY = dt.date(2024, 12, 18)
OPENING = 9 * 60  # 09:00, in minutes


def item_labels() -> list[str]:
    labels = []
    for product, variant, regular, large in MENU:
        for size, price in (("Regular", regular), ("Large", large)):
            labels.append(" - ".join([f"{size} {product}", *([variant] if variant else []), price]))
    return labels


def _prices() -> np.ndarray:
    return np.array([int(p.replace(".", "")) for _, _, r, lg in MENU for p in (r, lg)], dtype=np.int64)


def make_day(rng: np.random.Generator, branch: str, day: dt.date, orders: int) -> pl.DataFrame:
    """One branch's orders for one day, as a frame of the seven CSV columns."""
    labels = pl.Series(item_labels())
    prices = _prices()
    popularity = rng.dirichlet(np.full(len(labels), 2.0))
    per_order = np.minimum(1 + rng.poisson(1.3, orders), 6)
    order_of_item = np.repeat(np.arange(orders), per_order)
    which = rng.choice(len(labels), size=len(order_of_item), p=popularity)
    # Now and then the same item twice in a row (two of the same drink).
    repeat = (rng.random(len(which) - 1) < 0.12) & (order_of_item[1:] == order_of_item[:-1])
    which[1:][repeat] = which[:-1][repeat]
    items = (pl.DataFrame({"order": order_of_item, "item": labels.gather(which), "pence": prices[which]})
             .group_by("order", maintain_order=True)
             .agg(pl.col("item").str.join(", "), pl.col("pence").sum()))
    minutes = OPENING + np.cumsum(rng.integers(0, 3, orders))  # tills stamp to the minute
    stamps = [f"{day:%d/%m/%Y} {m // 60 % 24:02d}:{m % 60:02d}" for m in minutes.tolist()]
    card = rng.random(orders) < 0.7
    numbers = rng.integers(10**15, 10**16, orders).astype(str)
    names = [f"{FIRST[a]} {LAST[b]}" for a, b in zip(rng.integers(0, len(FIRST), orders).tolist(),
                                                      rng.integers(0, len(LAST), orders).tolist())]
    return pl.DataFrame({
        "timestamp": stamps,
        "branch": [branch] * orders,
        "customer_name": names,
        "items": items.get_column("item"),
        "total_price": (items.get_column("pence") / 100).round(2),  # written like the tills: 2.9, 12.85
        "payment_type": np.where(card, "CARD", "CASH"),
        "card_number": pl.Series(numbers).zip_with(pl.Series(card), pl.Series([None] * orders, dtype=pl.String)),
    })


def file_name(branch: str, day: dt.date) -> str:
    return f"{branch.lower().replace(' ', '_')}_{day:%d-%m-%Y}_09-00-00.csv"


def generate(out_dir: Path, files: int = 40, seed: int = 42, top: int | None = None, branches: int = 8,
             min_orders: int = 180, max_orders: int = 260) -> dict:
    """Write `files` day files going round `branches` branches; return a summary. (`top` is unused.)"""
    if files < 1 or not 1 <= branches <= len(BRANCHES):
        raise ValueError(f"need files >= 1 and 1 <= branches <= {len(BRANCHES)}")
    started = time.perf_counter()
    landing = Path(out_dir) / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    branches = min(branches, files)
    rows = 0
    for k in range(files):
        branch, day = BRANCHES[k % branches], FIRST_DAY + dt.timedelta(days=k // branches)
        frame = make_day(rng, branch, day, int(rng.integers(min_orders, max_orders, endpoint=True)))
        frame.write_csv(landing / file_name(branch, day), include_header=False)
        rows += frame.height
    return {"files": files, "rows": rows, "branches": branches, "landing_dir": str(landing),
            "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="writes landing/ here")
    parser.add_argument("--files", type=int, default=40, help="branch-day files (default 40)")
    parser.add_argument("--branches", type=int, default=8, help=f"branches, 1..{len(BRANCHES)} (default 8)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        s = generate(args.out_dir, args.files, args.seed, branches=args.branches)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{s['files']} files, {s['rows']:,} orders, {s['branches']} branches, {s['seconds']} s -> {args.out_dir}")


if __name__ == "__main__":
    main()

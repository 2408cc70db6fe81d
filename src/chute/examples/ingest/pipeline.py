"""Route each extraction's part files to its table.

`rows` holds a batch of landing files, possibly of both extractions (their columns side by
side, NULL where a file lacks one); `source_file` says which folder a row came from.
"""

from __future__ import annotations

import polars as pl

from chute import node

ORDERS = ["order_id", "user_id", "order_number", "order_dow", "order_hour_of_day", "days_since_prior_order",
          "product_count", "total", "status", "placed_at", "updated_at"]
PRODUCTS = ["product_id", "product_name", "aisle", "department", "price", "updated_at"]


def rows_of(rows: pl.DataFrame, folder: str, columns: list[str]) -> pl.DataFrame:
    mine = rows.filter(pl.col("source_file").str.starts_with(f"{folder}/"))
    return mine.select(pl.col(c) if c in mine.columns else pl.lit(None).alias(c) for c in columns)


@node(outputs="orders")
def orders(rows: pl.DataFrame) -> pl.DataFrame:
    return rows_of(rows, "orders", ORDERS)


@node(outputs="products")
def products(rows: pl.DataFrame) -> pl.DataFrame:
    return rows_of(rows, "products", PRODUCTS)

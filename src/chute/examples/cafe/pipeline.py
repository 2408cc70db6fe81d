"""The café chain: orders -> branches, products, variants, transactions, items.

`orders` is what the first step of chute.toml leaves of the landing rows: the personal
columns are already gone. Every id is a deterministic surrogate key (chute.transforms):
the same branch, product, order or line gets the same id in every load, so loading a file
again, or two files of one branch that overlap, merges onto the rows already there.
"""

from __future__ import annotations

import polars as pl

from chute import node
from chute.transforms import add_key, explode_list, extract, split_dimension

# What makes an order itself, once its customer is gone. Two identical orders in the same
# minute (same items, same total, same payment) are told apart by their position among
# such twins in their file.
ORDER_KEY = ["branch_name", "timestamp", "items", "total_price", "payment_type", "twin"]


@node(outputs=("branches", "transactions", "order_lines"))
def orders_by_branch(orders: pl.DataFrame):
    orders = orders.with_columns(
        branch_name=pl.col("branch").str.strip_chars(),
        ordered_at=pl.col("timestamp").str.strptime(pl.Datetime("us"), "%d/%m/%Y %H:%M", strict=True),
    ).drop("branch")
    orders = orders.with_columns(
        twin=pl.int_range(pl.len()).over(["source_file", "branch_name", "timestamp", "items", "total_price",
                                          "payment_type"]))
    orders = add_key(orders, ORDER_KEY, "transaction_id", namespace="transaction")
    branches, orders = split_dimension(orders, ["branch_name"], "branch_id", namespace="branch")
    transactions = orders.select("transaction_id", "branch_id", "ordered_at", "total_price", "payment_type",
                                 "source_file")
    lines = orders.select("transaction_id", "items", "source_file")
    return branches, transactions, lines


@node(outputs=("products", "variants", "transaction_items"))
def items_of_orders(order_lines: pl.DataFrame, item_pattern: str):
    lines = explode_list(order_lines, "items", ",")  # 1NF: one row per item
    lines = extract(lines, "items", item_pattern).with_columns(pl.col("price").cast(pl.Decimal(6, 2)))
    products, lines = split_dimension(lines, ["product_name", "size", "price"], "product_id", namespace="product")
    with_variant = lines.filter(pl.col("variant_name").is_not_null())
    variants, _ = split_dimension(with_variant, ["variant_name"], "variant_id", namespace="variant")
    lines = lines.join(variants, on="variant_name", how="left").drop("variant_name")
    # The same product and variant twice in one order is one line with quantity 2. Counted per
    # file: an order that two files of a batch both hold is one order, not one of twice the size.
    items = (lines.group_by(["transaction_id", "product_id", "variant_id", "source_file"], maintain_order=True)
             .agg(quantity=pl.len().cast(pl.Int32)))
    items = add_key(items, ["transaction_id", "product_id", "variant_id"], "item_id", namespace="item")
    return products, variants, items

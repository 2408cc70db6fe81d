"""Stock prices: keep the top companies, add the daily changes.

`prices` holds the rows of a batch of landing files; its `source_file` column names the
file each row came from (for example `aav.us.txt`), which is where the ticker comes from.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from chute import file_filter, node

_TICKER = re.compile(r"^(?:.*/)?(.+?)\.us\.[^/]*$", re.IGNORECASE)


def ticker_of(file_name: str) -> str | None:
    """'aav.us.txt' -> 'aav'; 'gs_i-cl.us.csv' -> 'gs_i-cl'."""
    match = _TICKER.match(file_name)
    return match[1].lower() if match else None


@node
def top_tickers(top_companies: Path) -> frozenset[str]:
    """top_companies.txt is one line of quoted file names: 'aav.us.csv', 'ajg.us.csv', ..."""
    names = (part.strip().strip("'\"") for part in top_companies.read_text(encoding="utf-8").split(","))
    return frozenset(t for t in map(ticker_of, names) if t)


@file_filter
def top_companies_only(file_name: str, top_tickers: frozenset[str]) -> bool:
    """Read only the files of the top companies (the others are never parsed)."""
    return ticker_of(file_name) in top_tickers


@node(outputs="historical_stocks_data")
def historical_stocks_data(prices: pl.DataFrame) -> pl.DataFrame:
    # One ticker per file: work it out per file name, not per row.
    company = {f: ticker_of(f) for f in prices.get_column("source_file").unique().to_list()}
    open_, close = pl.col("Open"), pl.col("Close")
    return prices.select(
        stock_date=pl.col("Date"),
        open_value=open_,
        high_value=pl.col("High"),
        low_value=pl.col("Low"),
        close_value=close,
        volume_traded=pl.col("Volume"),
        daily_percent_change=pl.when(open_ != 0).then((close - open_) / open_ * 100),  # NULL when Open is 0
        value_change=close - open_,
        company_name=pl.col("source_file").replace_strict(company, return_dtype=pl.String),
        source_file=pl.col("source_file"),  # kept so the ledger counts rows per file
        source_row=pl.col("source_row"),  # kept so a rejected row is shown with its line in the file
    )

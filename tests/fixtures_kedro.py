"""A small Kedro project, as `kedro new` lays one out, that is also a chute project: price
files land; Kedro nodes (pandas and polars, a transcoded dataset, a parameter and a catalog
entry) shape them; two tables receive them. Used by the local and the AWS tests alike.

The expected rows are computed here from the landing files with the standard library only.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from conftest import write

PACKAGE = "kedro_demo"
SECTORS = {"aav": "energy", "bbk": "banks", "ccl": "leisure", "dpz": "food"}

NODES = '''\
"""Pure functions: pandas in, pandas out (and one polars node)."""

import pandas as pd
import polars as pl


def clean_prices(raw: pd.DataFrame, min_volume: int) -> pd.DataFrame:
    if (raw["Volume"] < 0).any():
        raise ValueError("a negative volume")
    kept = raw[raw["Volume"] >= min_volume]
    return pd.DataFrame({
        "ticker": kept["Ticker"].str.lower(),
        "price_date": kept["Date"],
        "open_value": kept["Open"],
        "close_value": kept["Close"],
        "volume": kept["Volume"],
        "change": (kept["Close"] - kept["Open"]).round(4),
        "source_file": kept["source_file"],
    })


def with_sectors(prices: pd.DataFrame, sectors: pd.DataFrame) -> pd.DataFrame:
    return prices.merge(sectors, on="ticker", how="left")


def ticker_summary(prices: pl.DataFrame) -> pl.DataFrame:
    assert isinstance(prices, pl.DataFrame), type(prices)  # the @polars transcoding
    return prices.group_by("source_file", "ticker").agg(
        days=pl.len(), total_volume=pl.col("volume").sum(), best_change=pl.col("change").max())
'''

PIPELINE = '''\
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import clean_prices, ticker_summary, with_sectors


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(clean_prices, ["raw_prices", "params:min_volume"], "clean_prices", name="clean_prices"),
        node(with_sectors, ["clean_prices", "sectors"], "daily_prices@pandas", name="with_sectors"),
        node(ticker_summary, "daily_prices@polars", "ticker_summary", name="ticker_summary"),
    ])
'''

REGISTRY = '''\
"""Project pipelines (as `kedro new` writes it)."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values())
    return pipelines
'''

CATALOG = """\
raw_prices:                 # bound to the landing files by chute ([pipeline] input)
  type: pandas.CSVDataset
  filepath: data/01_raw/prices.csv

sectors:
  type: pandas.CSVDataset
  filepath: data/01_raw/sectors.csv
"""

CHUTE_TOML = f"""\
[project]
name = "kedro-demo"

[landing]
path = "landing"
patterns = ["*.csv"]

[source]
format = "csv"

[source.columns]
Date = "date"
Open = "double"
Close = "double"
Volume = "bigint"

[pipeline]
input = "raw_prices"
kedro = "{PACKAGE}.pipeline_registry:__default__"

[tables.daily_prices]
mode = "merge"
primary_key = ["ticker", "price_date"]

[tables.daily_prices.columns]
ticker = "text"
price_date = "date"
open_value = "double"
close_value = "double"
volume = "bigint"
change = "double"
sector = "text"

[tables.ticker_summary]
mode = "merge"
primary_key = ["ticker"]

[tables.ticker_summary.columns]
ticker = "text"
days = "bigint"
total_volume = "bigint"
best_change = "double"
"""


def make_kedro_project(folder: Path, files: int = 3, rows: int = 20, seed: int = 3, min_volume: int = 100) -> Path:
    import kedro

    write(folder / "pyproject.toml", f"""\
[project]
name = "{PACKAGE}"
version = "0.1"

[tool.kedro]
package_name = "{PACKAGE}"
project_name = "kedro demo"
kedro_init_version = "{kedro.__version__}"
source_dir = "src"
""")
    src = folder / "src" / PACKAGE
    write(src / "__init__.py", '"""kedro demo"""\n')
    write(src / "settings.py", '"""Project settings: Kedro\'s defaults."""\n')
    write(src / "pipeline_registry.py", REGISTRY)
    write(src / "pipelines" / "__init__.py", "")
    write(src / "pipelines" / "prices" / "__init__.py", "from .pipeline import create_pipeline\n")
    write(src / "pipelines" / "prices" / "nodes.py", NODES)
    write(src / "pipelines" / "prices" / "pipeline.py", PIPELINE)
    write(folder / "conf" / "base" / "catalog.yml", CATALOG)
    write(folder / "conf" / "base" / "parameters.yml", f"min_volume: {min_volume}\n")
    write(folder / "conf" / "local" / "credentials.yml", "# secrets stay here, never in an image\n")
    write(folder / "data" / "01_raw" / "sectors.csv",
          "ticker,sector\n" + "".join(f"{t},{s}\n" for t, s in SECTORS.items()))
    write(folder / "chute.toml", CHUTE_TOML)
    rng = random.Random(seed)
    for ticker in list(SECTORS)[:files]:
        lines = ["Date,Ticker,Open,Close,Volume"]
        for day in range(rows):
            price = round(rng.uniform(10, 90), 2)
            lines.append(f"2024-03-{day + 1:02d},{ticker.upper()},{price},{round(price + rng.uniform(-3, 3), 2)},"
                         f"{rng.choice([0, 50, rng.randint(100, 10_000)])}")
        write(folder / "landing" / f"{ticker}.csv", "\n".join(lines) + "\n")
    return folder


def expected(folder: Path, min_volume: int = 100) -> tuple[list[tuple], list[tuple]]:
    """(daily_prices, ticker_summary) rows, sorted, from the landing files."""
    import datetime as dt

    daily, summary = [], []
    for path in sorted((folder / "landing").glob("*.csv")):
        rows = [r for r in csv.DictReader(io.StringIO(path.read_text())) if int(r["Volume"]) >= min_volume]
        for r in rows:
            ticker = r["Ticker"].lower()
            daily.append((ticker, dt.date.fromisoformat(r["Date"]), float(r["Open"]), float(r["Close"]),
                          int(r["Volume"]), round(float(r["Close"]) - float(r["Open"]), 4), SECTORS[ticker]))
        if rows:
            ticker = rows[0]["Ticker"].lower()
            summary.append((ticker, len(rows), sum(int(r["Volume"]) for r in rows),
                            max(round(float(r["Close"]) - float(r["Open"]), 4) for r in rows)))
    return sorted(daily), sorted(summary)


@pytest.fixture
def kedro_project(tmp_path):
    pytest.importorskip("kedro")
    pytest.importorskip("kedro_datasets")
    return make_kedro_project(tmp_path / "kedro-demo")


@pytest.fixture
def other_db(pg_cluster):
    """A second empty database (the test's own is db_url), to load the same data another way."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_cluster.url(name)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""A small project for the quality tests: trades.csv files land, one table with a contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write

CONFIG = """
[project]
name = "trades"

[source]
pii_columns = ["trader"]

[source.columns]
price = "text"

[pipeline]
{pipeline}

[tables.trades]
mode = "{mode}"
primary_key = ["id"]

[tables.trades.columns]
id = "integer"
day = "date"
symbol = "varchar(5)"
side = "text"
price = "double"
trader = "text"

[tables.trades.contract]
{contract}

[tables.trades.contract.columns.price]
not_null = true
min = 0
max = 1000

[tables.trades.contract.columns.side]
allowed = ["buy", "sell"]

[tables.trades.contract.columns.symbol]
regex = "^[A-Z]+$"

[[tables.trades.contract.rules]]
name = "no_penny_sells"
sql = "NOT (side = 'sell' AND price < 1)"
message = "sells under 1 are not allowed"
column = "price"
"""

HEADER = "id,day,symbol,side,price,trader\n"


def make_project(folder: Path, *, mode: str = "append", contract: str = "", pipeline: str | None = None) -> Path:
    wiring = 'input = "trades"' if pipeline is None else 'module = "pipeline.py"\ninput = "rows"'
    write(folder / "chute.toml", CONFIG.replace("{mode}", mode).replace("{contract}", contract)
          .replace("{pipeline}", wiring))
    if pipeline is not None:
        write(folder / "pipeline.py", pipeline)
    (folder / "landing").mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def trades(tmp_path):
    return make_project(tmp_path / "trades")


def land(project: Path, name: str, body: str) -> Path:
    return write(project / "landing" / name, HEADER + body)

"""Rows are counted as written, per table and per run, whatever the nodes do with source_file."""

from __future__ import annotations

import json

from conftest import write

CONFIG = """
[project]
name = "counts"

[landing]
patterns = ["*.csv"]

[pipeline]
module = "pipeline.py"

[tables.orders]
columns = {id = "integer", amount = "integer"}

[tables.customers]
columns = {customer = "text"}
"""

PIPELINE = '''
import polars as pl
from chute import node


@node(outputs="orders")
def orders(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select("id", "amount")  # source_file dropped: rows no longer name their file


@node(outputs="customers")
def customers(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select("customer").unique()
'''


def test_counts_per_run_and_table_when_the_nodes_drop_source_file(tmp_path, cli, query):
    project = tmp_path / "counts"
    write(project / "chute.toml", CONFIG)
    write(project / "pipeline.py", PIPELINE)
    write(project / "landing" / "a.csv", "id,amount,customer\n1,10,ann\n2,20,bob\n3,30,ann\n")
    write(project / "landing" / "b.csv", "id,amount,customer\n4,40,cy\n5,50,cy\n")
    result = cli("run", "-p", project)
    summary = json.loads(cli("run", "-p", project, "--json", "--retry-failed").output)  # nothing new: zero
    assert summary["rows_loaded"] == 0
    text = " ".join(result.output.split())
    assert "8 rows loaded (orders 5, customers 3)" in text  # 5 orders + ann, bob, cy (unique per unit)
    assert "Rows per file are not known for files loaded together" in text
    assert query("SELECT rows_loaded FROM chute.runs ORDER BY run_id") == [(8,), (0,)]
    assert query("SELECT count(*) FROM orders")[0][0] == 5
    # The two files went in one unit: which rows came from which is not known, and says so (NULL).
    assert query("SELECT name, rows_loaded FROM chute.files ORDER BY name") == [("a.csv", None), ("b.csv", None)]


def test_json_gives_rows_per_table(tmp_path, cli, query):
    project = tmp_path / "counts"
    write(project / "chute.toml", CONFIG)
    write(project / "pipeline.py", PIPELINE)
    write(project / "landing" / "a.csv", "id,amount,customer\n1,10,ann\n2,20,bob\n")
    summary = json.loads(cli("run", "-p", project, "--json").output)
    assert summary["tables"] == {"orders": 2, "customers": 2} and summary["rows_loaded"] == 4
    assert summary["rows_by_file"] is True  # one file alone in its unit: its rows are its own
    assert query("SELECT rows_loaded FROM chute.files") == [(4,)]

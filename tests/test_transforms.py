"""Built-in transforms: each one on small frames, surrogate keys stable across processes,
and the same transforms declared as [[pipeline.steps]] in chute.toml, loaded for real."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from chute import TransformError
from chute.errors import ConfigError
from chute.pipeline.graph import Pipeline
from chute.config.project import project_from_dict
from chute.transforms import (add_key, as_node, cast, dedup, derive, drop_columns, explode_list, extract,
                              hash_columns, mask_columns, rename, split_dimension, stable_id, surrogate_ids, where)
from chute.transforms.steps import nodes_from_steps
from conftest import write

KEY = "k" * 32


# -- PII --------------------------------------------------------------------------------------
def test_drop_columns_removes_them_and_is_strict_on_request():
    frame = pl.DataFrame({"name": ["a"], "card": ["4111"], "total": [1.0]})
    assert drop_columns(frame, ["name", "card", "absent"]).columns == ["total"]
    with pytest.raises(TransformError, match="absent"):
        drop_columns(frame, ["absent"], strict=True)


def test_hash_is_keyed_hmac_from_the_environment(monkeypatch):
    import hashlib
    import hmac

    frame = pl.DataFrame({"card": ["4111", "4111", None, "5500"]})
    monkeypatch.delenv("CHUTE_PII_KEY", raising=False)
    with pytest.raises(TransformError, match=r"\$CHUTE_PII_KEY"):
        hash_columns(frame, ["card"])
    monkeypatch.setenv("CHUTE_PII_KEY", KEY)
    out = hash_columns(frame, ["card"]).get_column("card").to_list()
    assert out[0] == out[1] == hmac.new(KEY.encode(), b"4111", hashlib.sha256).hexdigest()
    assert out[2] is None and out[3] != out[0]
    monkeypatch.setenv("OTHER_KEY", "x" * 32)
    assert hash_columns(frame, ["card"], key_env="OTHER_KEY", length=16)["card"][0] != out[0][:16]
    monkeypatch.setenv("CHUTE_PII_KEY", "short")
    with pytest.raises(TransformError, match="too short"):
        hash_columns(frame, ["card"])


def test_mask_keeps_the_last_characters():
    frame = pl.DataFrame({"card": ["4111222233334444", "12", None]})
    assert mask_columns(frame, ["card"])["card"].to_list() == ["************4444", "**", None]
    assert mask_columns(frame, ["card"], keep_last=0, char="#")["card"].to_list() == ["#" * 16, "##", None]


# -- 1NF ---------------------------------------------------------------------------------------
def test_explode_gives_one_row_per_value_with_position():
    frame = pl.DataFrame({"order": [1, 2, 3], "items": ["a, b ,c", "d", None]})
    out = explode_list(frame, "items", ",", position="n")
    assert out.rows() == [(1, "a", 1), (1, "b", 2), (1, "c", 3), (2, "d", 1)]


def test_extract_named_groups_and_strict_mismatch():
    pattern = r"^(?P<size>\S+) (?P<name>.+?)(?: - (?P<variant>.+?))? - (?P<price>\d+\.\d{2})$"
    frame = pl.DataFrame({"item": ["Large Latte - 2.45", "Regular Flavoured latte - Hazelnut - 2.55"]})
    out = extract(frame, "item", pattern)
    assert out.rows() == [("Large", "Latte", None, "2.45"), ("Regular", "Flavoured latte", "Hazelnut", "2.55")]
    with pytest.raises(TransformError, match="1 value"):
        extract(pl.DataFrame({"item": ["Large Latte - 2.45", "nonsense"]}), "item", pattern)
    with pytest.raises(TransformError, match="named groups"):
        extract(frame, "item", r"(\d+)")


# -- keys and 3NF ------------------------------------------------------------------------------
def test_surrogate_keys_are_63_bit_and_distinguish_nulls_and_namespaces():
    frame = pl.DataFrame({"a": ["x", "x", None, "y"], "b": [1, 1, 2, None]})
    ids = surrogate_ids(frame, ["a", "b"])
    assert ids.dtype == pl.Int64 and ids[0] == ids[1] and ids.n_unique() == 3
    assert all(0 <= v < 2**63 for v in ids.to_list())
    assert surrogate_ids(frame, ["a", "b"], namespace="t")[0] != ids[0]
    # "x" + "" is not "" + "x": the separator keeps column boundaries
    assert stable_id("x\x1f") != stable_id("\x1fx")


def test_surrogate_keys_are_the_same_in_another_process():
    frame = pl.DataFrame({"branch": ["Leicester", "London Soho"], "day": ["2024-12-18", "2024-12-19"]})
    here = add_key(frame, ["branch", "day"], "id", namespace="n")["id"].to_list()
    code = textwrap.dedent("""
        import json, polars as pl
        from chute.transforms import add_key
        f = pl.DataFrame({"branch": ["Leicester", "London Soho"], "day": ["2024-12-18", "2024-12-19"]})
        print(json.dumps(add_key(f, ["branch", "day"], "id", namespace="n")["id"].to_list()))
    """)
    # A different hash seed would change Python's own str hashing: the ids must not care.
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    there = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      env=env).stdout)
    assert here == there


def test_split_dimension_gives_one_row_per_natural_key():
    frame = pl.DataFrame({"branch": ["A", "B", "A"], "city": ["x", "y", "z"], "total": [1, 2, 3]})
    dim, fact = split_dimension(frame, ["branch"], "branch_id", attributes=["city"])
    assert dim.columns == ["branch_id", "branch", "city"] and dim.height == 2
    assert dim.filter(pl.col("branch") == "A")["city"].to_list() == ["x"]  # first row's attributes win
    assert fact.columns == ["total", "branch_id"]
    joined = fact.join(dim, on="branch_id")
    assert joined.sort("total")["branch"].to_list() == ["A", "B", "A"]
    with pytest.raises(TransformError, match="already"):
        split_dimension(fact, ["total"], "branch_id")


# -- dedup -------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep,by,expected", [
    ("first", None, [("a", 1, 10), ("b", 3, None)]),
    ("last", None, [("a", 4, 5), ("b", 3, None)]),
    ("max", "v", [("a", 1, 10), ("b", 3, None)]),
    ("min", "v", [("a", 4, 5), ("b", 3, None)]),
])
def test_dedup_rules(keep, by, expected):
    frame = pl.DataFrame({"k": ["a", "a", "b", "a"], "n": [1, 2, 3, 4], "v": [10, 7, None, 5]})
    assert sorted(dedup(frame, ["k"], keep, by).rows()) == expected


def test_dedup_max_needs_by():
    with pytest.raises(TransformError, match="needs `by`"):
        dedup(pl.DataFrame({"k": [1]}), ["k"], "max")


# -- columns -----------------------------------------------------------------------------------
def test_rename_cast_derive_filter():
    frame = pl.DataFrame({"Price": ["2.50", "1.25"], "qty": ["2", "3"]})
    frame = cast(rename(frame, {"Price": "price"}), {"price": "numeric(6,2)", "qty": "integer"})
    assert frame.schema["qty"] == pl.Int32 and frame.schema["price"] == pl.Decimal(6, 2)
    frame = derive(frame, {"amount": "price * qty", "big": "qty > 2"})
    assert frame["amount"].cast(pl.Float64).to_list() == [5.0, 3.75]
    assert where(frame, "big").height == 1
    with pytest.raises(TransformError, match="cast"):
        cast(pl.DataFrame({"x": ["nope"]}), {"x": "integer"})
    with pytest.raises(TransformError, match="unknown column type"):
        cast(frame, {"qty": "intt"})


def test_as_node_fits_the_pipeline_model():
    n = as_node(dedup, "rows", "clean", key=["k"], keep="first")
    plan = Pipeline([n]).plan("rows", [], ["clean"])
    values = plan.run_batch(pl.DataFrame({"k": [1, 1, 2]}), {}, {})
    assert values["clean"]["k"].to_list() == [1, 2]


# -- declared in chute.toml --------------------------------------------------------------------
def test_steps_chain_into_nodes_and_split_writes_two_datasets(tmp_path):
    project = project_from_dict({
        "project": {"name": "p"},
        "pipeline": {"input": "raw", "steps": [
            {"op": "drop", "columns": ["secret"]},
            {"op": "split", "natural_key": ["shop"], "key": "shop_id", "dimension": "shops", "output": "sales"},
        ]},
    }, tmp_path)
    nodes = nodes_from_steps(project.pipeline.steps, "raw")
    plan = Pipeline(nodes).plan("raw", [], ["shops", "sales"])
    values = plan.run_batch(pl.DataFrame({"shop": ["a", "a"], "secret": ["s", "t"], "n": [1, 2]}), {}, {})
    assert values["shops"].height == 1 and values["sales"].columns == ["n", "shop_id"]


@pytest.mark.parametrize("step,message", [
    ({"op": "explode"}, "column"),
    ({"op": "nope", "columns": ["a"]}, "op"),
    ({"op": "cast", "columns": {"a": "intt"}}, "unknown column type"),
    ({"op": "extract", "column": "a", "pattern": "(x)"}, "named groups"),
    ({"op": "derive", "columns": {"a": "1 +* ("}}, "cannot parse"),
    ({"op": "drop", "columns": ["a"], "colums": 1}, "unknown key"),
])
def test_bad_steps_are_config_errors(tmp_path, step, message):
    with pytest.raises(ConfigError, match=message):
        project_from_dict({"project": {"name": "p"}, "pipeline": {"steps": [step]}}, tmp_path)


def test_foreign_key_must_name_a_table_primary_key(tmp_path):
    tables = {"parent": {"primary_key": ["id"], "columns": {"id": "bigint", "x": "text"}},
              "child": {"columns": {"pid": "bigint"}, "foreign_keys": {"pid": "parent.x"}}}
    with pytest.raises(ConfigError, match="primary key"):
        project_from_dict({"project": {"name": "p"}, "tables": tables}, tmp_path)


STEPS_TOML = """
[project]
name = "steps"

[source.columns]
id = "text"

[pipeline]
input = "raw"

[[pipeline.steps]]
op = "mask"
columns = ["email"]
keep_last = 3

[[pipeline.steps]]
op = "rename"
columns = { Amount = "amount" }

[[pipeline.steps]]
op = "cast"
columns = { amount = "numeric(8,2)", id = "bigint" }

[[pipeline.steps]]
op = "dedup"
key = ["id"]
keep = "max"
by = "amount"

[[pipeline.steps]]
op = "derive"
columns = { amount_with_tax = "amount * 1.2" }
output = "payments"

[tables.payments]
mode = "merge"
primary_key = ["id"]
[tables.payments.columns]
id = "bigint"
email = "text"
amount = "numeric(8,2)"
amount_with_tax = "numeric(10,2)"
"""


def test_declared_steps_load_into_postgres(tmp_path, cli, query):
    write(tmp_path / "chute.toml", STEPS_TOML)
    write(tmp_path / "landing" / "a.csv", "id,email,Amount\n1,ann@example.com,5.00\n1,ann@example.com,7.50\n"
                                          "2,bob@example.com,1.25\n")
    cli("run", "-p", tmp_path)
    assert query("SELECT id, email, amount::text, amount_with_tax::text FROM payments ORDER BY id") == [
        (1, "************com", "7.50", "9.00"), (2, "************com", "1.25", "1.50")]

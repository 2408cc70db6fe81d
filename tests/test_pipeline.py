"""Nodes and the DAG: wiring checks, order, once-per-run nodes, multiple outputs."""

from __future__ import annotations

import polars as pl
import pytest

from chute import Pipeline, node
from chute.errors import PipelineError, TransformError
from chute.pipeline.graph import load_pipeline


@node
def doubled(rows: pl.DataFrame, factor: int) -> pl.DataFrame:
    return rows.with_columns(pl.col("x") * factor)


@node(outputs="out")
def add_label(doubled: pl.DataFrame, label: str) -> pl.DataFrame:
    return doubled.with_columns(label=pl.lit(label))


@node
def label(suffix: str) -> str:
    return "v-" + suffix


def test_order_and_static_nodes():
    plan = Pipeline([add_label, doubled, label]).plan("rows", ["factor", "suffix"], ["out"])
    assert [n.name for n in plan.static] == ["label"]
    assert [n.name for n in plan.batch] == ["doubled", "add_label"]
    static = plan.run_static({"factor": 3, "suffix": "a"})
    values = plan.run_batch(pl.DataFrame({"x": [1, 2]}), static, timings := {})
    assert values["out"].to_dicts() == [{"x": 3, "label": "v-a"}, {"x": 6, "label": "v-a"}]
    assert set(timings) == {"doubled", "add_label"}


def test_missing_input_names_it_and_lists_known_names():
    with pytest.raises(PipelineError, match=r"node doubled needs input 'factor'.*known: doubled, rows"):
        Pipeline([doubled]).plan("rows", [], [])


def test_cycle_is_reported():
    a = node(lambda b: b, inputs="b", outputs="a", name="make_a")
    b = node(lambda a: a, inputs="a", outputs="b", name="make_b")
    with pytest.raises(PipelineError, match="cycle"):
        Pipeline([a, b]).plan("rows", [], [])


def test_duplicate_output_is_reported():
    one = node(lambda rows: rows, inputs="rows", outputs="t", name="one")
    two = node(lambda rows: rows, inputs="rows", outputs="t", name="two")
    with pytest.raises(PipelineError, match="produced by two nodes: one and two"):
        Pipeline([one, two]).plan("rows", [], ["t"])


def test_table_without_producer_is_reported():
    with pytest.raises(PipelineError, match="table 'nowhere' is configured but no node outputs"):
        Pipeline([doubled]).plan("rows", ["factor"], ["nowhere"])


def test_multiple_outputs_from_tuple_and_dict():
    split = node(lambda rows: (rows.head(1), rows.tail(1)), inputs="rows", outputs=["first", "last"], name="split")
    plan = Pipeline([split]).plan("rows", [], ["first", "last"])
    values = plan.run_batch(pl.DataFrame({"x": [1, 2, 3]}), {}, {})
    assert values["first"]["x"].to_list() == [1] and values["last"]["x"].to_list() == [3]
    bad = node(lambda rows: {"first": rows}, inputs="rows", outputs=["first", "last"], name="bad")
    with pytest.raises(TransformError, match="returned no value for last"):
        Pipeline([bad]).plan("rows", [], []).run_batch(pl.DataFrame({"x": [1]}), {}, {})


def test_failing_node_raises_transform_error_with_its_name():
    boom = node(lambda rows: 1 / 0, inputs="rows", outputs="t", name="boom")
    with pytest.raises(TransformError, match="node boom failed: ZeroDivisionError"):
        Pipeline([boom]).plan("rows", [], ["t"]).run_batch(pl.DataFrame({"x": [1]}), {}, {})


def test_load_pipeline_from_file(tmp_path):
    (tmp_path / "p.py").write_text("from chute import node\n@node(outputs='t')\ndef f(rows):\n    return rows\n")
    assert [n.name for n in load_pipeline(tmp_path / "p.py").nodes] == ["f"]
    (tmp_path / "broken.py").write_text("import no_such_module\n")
    with pytest.raises(PipelineError, match="import failed: ModuleNotFoundError"):
        load_pipeline(tmp_path / "broken.py")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(PipelineError, match="defines no @node functions"):
        load_pipeline(tmp_path / "empty.py")

"""Declarative steps: `[[pipeline.steps]]` in chute.toml -> pipeline nodes.

Each step names its operation (`op`) and reads one dataset (`input`, by default the output
of the step before it, or the landing input for the first step). It writes `output` (by
default a name of its own; name it after a table to load it). `split` also writes the
dimension dataset named by `dimension`.

    [[pipeline.steps]]
    op = "drop"
    columns = ["customer_name", "card_number"]

    [[pipeline.steps]]
    op = "split"
    natural_key = ["branch"]
    key = "branch_id"
    dimension = "branches"
    output = "orders"
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from chute.config.steps import (CastStep, DedupStep, DeriveStep, DropStep, ExplodeStep, ExtractStep, FilterStep,
                                HashStep, MaskStep, RenameStep, SplitStep, StepBase)
from chute.pipeline.graph import Node
from chute.transforms import columns, explode, normalize, pii
from chute.transforms.dedup import dedup

# Each declared step (config/steps.py) -> the built-in it runs.
APPLY: dict[type[StepBase], Callable[[StepBase, pl.DataFrame], pl.DataFrame]] = {
    DropStep: lambda step, frame: pii.drop_columns(frame, step.columns, strict=step.strict),
    HashStep: lambda step, frame: pii.hash_columns(frame, step.columns, key_env=step.key_env, length=step.length),
    MaskStep: lambda step, frame: pii.mask_columns(frame, step.columns, keep_last=step.keep_last, char=step.char),
    ExplodeStep: lambda step, frame: explode.explode_list(frame, step.column, step.separator, position=step.position,
                                                          strip=step.strip),
    ExtractStep: lambda step, frame: explode.extract(frame, step.column, step.pattern, keep=step.keep, strict=step.strict),
    DedupStep: lambda step, frame: dedup(frame, step.key, step.keep, step.by),
    RenameStep: lambda step, frame: columns.rename(frame, step.columns),
    CastStep: lambda step, frame: columns.cast(frame, step.columns, strict=step.strict),
    DeriveStep: lambda step, frame: columns.derive(frame, step.columns),
    FilterStep: lambda step, frame: columns.where(frame, step.where),
    SplitStep: lambda step, frame: normalize.split_dimension(frame, step.natural_key, step.key, attributes=step.attributes,
                                                             namespace=step.namespace, keep_in_fact=step.keep_in_fact),
}


def nodes_from_steps(steps: list[StepBase], source: str) -> list[Node]:
    """Chain the steps into nodes: each reads the previous step's output unless told otherwise."""
    nodes = []
    previous = source
    for i, step in enumerate(steps, 1):
        name = f"step{i}_{step.op}"  # type: ignore[attr-defined]
        input_ = step.input or previous
        output = step.output or f"_{name}"
        outputs = (step.dimension, output) if isinstance(step, SplitStep) else (output,)
        nodes.append(Node(_frame_step(step), name, (input_,), outputs))
        previous = output
    return nodes


def _frame_step(step: StepBase):
    def run(frame):
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        return APPLY[type(step)](step, frame)
    run.__name__ = f"step_{step.op}"  # type: ignore[attr-defined]
    return run

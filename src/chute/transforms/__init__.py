"""Built-in transforms: plain functions on polars DataFrames, usable in a pipeline.py node,
as ready-made nodes (`as_node`), or declared as `[[pipeline.steps]]` in chute.toml.

    pii        drop_columns, hash_columns (keyed HMAC), mask_columns
    explode    explode_list (1NF: one row per value), extract (regex named groups -> columns)
    normalize  split_dimension (3NF with deterministic surrogate keys)
    keys       add_key, surrogate_ids, stable_id
    dedup      dedup (first | last | max | min of a column)
    columns    rename, cast, derive, where
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from chute.pipeline.graph import Node
from chute.transforms.columns import cast, derive, rename, where
from chute.transforms.dedup import dedup
from chute.transforms.explode import explode_list, extract
from chute.transforms.keys import add_key, stable_id, surrogate_ids
from chute.transforms.normalize import split_dimension
from chute.transforms.pii import drop_columns, hash_columns, mask_columns


def as_node(func: Callable[..., Any], input: str, output: str | Iterable[str], *, name: str | None = None,
            **options: Any) -> Node:
    """A pipeline node applying a built-in to one dataset: as_node(dedup, "rows", "clean", key=["id"])."""
    outputs = (output,) if isinstance(output, str) else tuple(output)
    bound = functools.partial(func, **options)
    return Node(bound, name or f"{func.__name__}_{outputs[0]}", (input,), outputs)


__all__ = [
    "as_node", "add_key", "cast", "dedup", "derive", "drop_columns", "explode_list", "extract", "hash_columns",
    "mask_columns", "rename", "split_dimension", "stable_id", "surrogate_ids", "where",
]

"""Third normal form: split a flat table into a dimension and the rows that point at it.

    split_dimension(orders, natural_key=["branch"], key="branch_id")
      -> branches: branch_id, branch            (one row per branch)
         orders:   ..., branch_id               (branch replaced by its id)

The id is a deterministic surrogate key (see keys.py): load the dimension with
mode = "merge" and primary_key = [key] and re-loads never duplicate its rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from chute.errors import TransformError
from chute.transforms.keys import add_key


def split_dimension(frame: pl.DataFrame, natural_key: Sequence[str], key: str, *,
                    attributes: Sequence[str] = (), namespace: str = "",
                    keep_in_fact: Sequence[str] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(dimension, fact). The dimension holds `key`, `natural_key` and `attributes`, one row
    per natural key (the first row's attributes win); the fact keeps its other columns,
    plus `key`, plus `keep_in_fact`.
    """
    columns = [*natural_key, *attributes]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"split: column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")
    if key in frame.columns:
        raise TransformError(f"split: the key column {key!r} is already in the data")
    keyed = add_key(frame, natural_key, key, namespace)
    dimension = (keyed.select([key, *columns])
                 .unique(subset=[key], keep="first", maintain_order=True))
    fact = keyed.drop([c for c in columns if c not in keep_in_fact])
    return dimension, fact

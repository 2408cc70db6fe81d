"""Deduplicate rows by key, with a rule for which row of a key wins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

from chute.errors import TransformError

Keep = Literal["first", "last", "max", "min"]


def dedup(frame: pl.DataFrame, key: Sequence[str], keep: Keep = "last", by: str | None = None) -> pl.DataFrame:
    """One row per distinct `key`, in the order the winners first appear.

    keep = "first" / "last": the first or last row of a key in arrival order;
    keep = "max" / "min": the row with the largest / smallest `by` (NULLs lose; ties go
    to the earlier row).
    """
    missing = [c for c in [*key, *([by] if by else [])] if c not in frame.columns]
    if missing:
        raise TransformError(f"dedup: column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")
    if not key:
        raise TransformError("dedup: name at least one key column")
    if keep in ("first", "last"):
        return frame.unique(subset=list(key), keep=keep, maintain_order=True)
    if keep not in ("max", "min"):
        raise TransformError(f"dedup: keep must be first, last, max or min, not {keep!r}")
    if not by:
        raise TransformError(f"dedup: keep = {keep!r} needs `by`, the column to compare")
    row = "__chute_row"
    return (frame.with_row_index(row)
            .sort([by, row], descending=[keep == "max", False], nulls_last=True)
            .unique(subset=list(key), keep="first")
            .sort(row)
            .drop(row))

"""Deterministic surrogate keys: the same natural key gets the same id on every run and machine.

An id is the first 63 bits of a BLAKE2b digest of the key's canonical text, so it fits a
PostgreSQL `bigint`, needs no sequence and no look-up of earlier loads: re-loading a file
with `merge` finds the same ids and adds no dimension rows. polars' own `hash` is not used
because its values may change between polars versions.

Canonical text: each key column cast to text (so cast the columns first if their types can
vary between files), NULL written as a marker that no text value takes, the parts joined by
a unit separator, and an optional namespace in front.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl

from chute.errors import TransformError

ID_BITS = 63
_MASK = (1 << ID_BITS) - 1
_SEPARATOR = "\x1f"
_NULL = "\x00null"


def key_text(frame: pl.DataFrame, columns: Sequence[str], namespace: str = "") -> pl.Series:
    """One canonical string per row for the values of `columns`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"key column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")
    if not columns:
        raise TransformError("a key needs at least one column")
    parts = [pl.col(c).cast(pl.String).fill_null(_NULL) for c in columns]
    if namespace:
        parts.insert(0, pl.lit(namespace))
    return frame.select(pl.concat_str(parts, separator=_SEPARATOR).alias("key")).to_series()


def stable_id(text: str) -> int:
    """The 63-bit id of one canonical key text."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") & _MASK


def surrogate_ids(frame: pl.DataFrame, columns: Sequence[str], namespace: str = "") -> pl.Series:
    """A bigint id per row, from the natural key in `columns`. Hashes each distinct key once."""
    text = key_text(frame, columns, namespace)
    distinct = text.unique()
    ids = pl.Series([stable_id(t) for t in distinct.to_list()], dtype=pl.Int64)
    return text.replace_strict(distinct, ids, return_dtype=pl.Int64)


def add_key(frame: pl.DataFrame, columns: Sequence[str], name: str, namespace: str = "") -> pl.DataFrame:
    """`frame` with a surrogate-key column `name` computed from `columns`."""
    return frame.with_columns(surrogate_ids(frame, columns, namespace).alias(name))

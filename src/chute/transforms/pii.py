"""Personal data: drop it, replace it with a keyed hash, or mask it.

`hash_columns` uses HMAC-SHA256 with a secret key read from the environment (never from
chute.toml), so the same person gets the same token in every load and nobody without the
key can test a guess ("is this card 4111...?") against the stored values. Rotating the key
changes every token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

import polars as pl

from chute.config.steps import DEFAULT_KEY_ENV  # declared with the `hash` step
from chute.errors import TransformError

MIN_KEY_BYTES = 16


def drop_columns(frame: pl.DataFrame, columns: Sequence[str], *, strict: bool = False) -> pl.DataFrame:
    """`frame` without `columns`. With strict=True a column that is not there is an error."""
    if strict:
        _require(frame, columns)
    return frame.drop([c for c in columns if c in frame.columns])


def pii_key(env: str = DEFAULT_KEY_ENV) -> bytes:
    value = os.environ.get(env)
    if not value:
        raise TransformError(f"hashing personal data needs a secret key in ${env} (at least {MIN_KEY_BYTES} "
                             "characters); set it in the environment, never in chute.toml")
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise TransformError(f"${env} is too short: use at least {MIN_KEY_BYTES} characters")
    return key


def hash_columns(frame: pl.DataFrame, columns: Sequence[str], *, key_env: str = DEFAULT_KEY_ENV,
                 length: int = 64) -> pl.DataFrame:
    """Replace each value of `columns` by the hex HMAC-SHA256 of its text (NULL stays NULL).

    `length` keeps that many hex characters (64 = the whole digest). Each distinct value is
    hashed once, so a column with few distinct values costs little.
    """
    _require(frame, columns)
    key = pii_key(key_env)
    if not 8 <= length <= 64:
        raise TransformError("hash length must be between 8 and 64 hex characters")
    out = []
    for c in columns:
        text = frame.get_column(c).cast(pl.String)
        distinct = text.drop_nulls().unique()
        tokens = pl.Series([hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()[:length]
                            for v in distinct.to_list()], dtype=pl.String)
        out.append(text.replace_strict(distinct, tokens, default=None, return_dtype=pl.String).alias(c))
    return frame.with_columns(out)


def mask_columns(frame: pl.DataFrame, columns: Sequence[str], *, keep_last: int = 4, char: str = "*") -> pl.DataFrame:
    """Replace all but the last `keep_last` characters of each value by `char` (NULL stays NULL).

    A value of `keep_last` characters or fewer is masked whole.
    """
    _require(frame, columns)
    if len(char) != 1:
        raise TransformError("the mask character must be one character")
    exprs = []
    for c in columns:
        text = pl.col(c).cast(pl.String)
        length = text.str.len_chars().cast(pl.Int64)
        # A value no longer than what would be kept is hidden whole: showing it all reveals it.
        hidden = pl.when(length > keep_last).then(length - keep_last).otherwise(length)
        exprs.append(pl.concat_str(text.str.slice(0, hidden).str.replace_all(r"(?s).", char.replace("$", "$$")),
                                   text.str.slice(hidden)).alias(c))
    return frame.with_columns(exprs)


def _require(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")

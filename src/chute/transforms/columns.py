"""Rename, cast and derive columns.

A derived column is a polars expression or, from chute.toml, a SQL expression string that
polars parses (`pl.sql_expr`): "price * quantity", "upper(branch)", "coalesce(a, b)".
Strings are parsed, never evaluated as Python.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from chute.coltypes import parse_type
from chute.errors import ConfigError, TransformError


def rename(frame: pl.DataFrame, columns: Mapping[str, str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"rename: column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")
    return frame.rename(dict(columns))


def cast(frame: pl.DataFrame, columns: Mapping[str, str | pl.DataType], *, strict: bool = True) -> pl.DataFrame:
    """Cast columns to chute column types ("bigint", "numeric(6,2)", "date", ...) or polars types.

    strict: a value that does not convert is an error (else it becomes NULL).
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"cast: column(s) {', '.join(missing)} not in the data (it has: {', '.join(frame.columns)})")
    try:
        types = {c: parse_type(t).polars if isinstance(t, str) else t for c, t in columns.items()}
    except ConfigError as exc:
        raise TransformError(f"cast: {exc}") from None
    try:
        return frame.with_columns([pl.col(c).cast(t, strict=strict) for c, t in types.items()])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise TransformError(f"cast: {str(exc).splitlines()[0]}") from None


def expression(value: str | pl.Expr) -> pl.Expr:
    if isinstance(value, pl.Expr):
        return value
    try:
        return pl.sql_expr(value)
    except Exception as exc:  # polars raises several kinds for a bad expression
        raise TransformError(f"cannot parse expression {value!r}: {str(exc).splitlines()[0]}") from None


def derive(frame: pl.DataFrame, columns: Mapping[str, str | pl.Expr]) -> pl.DataFrame:
    """New (or replaced) columns from expressions, all computed from the input columns."""
    exprs = [expression(v).alias(name) for name, v in columns.items()]
    try:
        return frame.with_columns(exprs)
    except pl.exceptions.PolarsError as exc:
        raise TransformError(f"derive: {str(exc).splitlines()[0]}") from None


def where(frame: pl.DataFrame, condition: str | pl.Expr) -> pl.DataFrame:
    """Keep the rows where `condition` is true."""
    try:
        return frame.filter(expression(condition))
    except pl.exceptions.PolarsError as exc:
        raise TransformError(f"filter: {str(exc).splitlines()[0]}") from None

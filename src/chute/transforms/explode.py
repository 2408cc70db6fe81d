"""First normal form: one value per field.

`explode_list` turns a field that holds several values ("Latte - 2.45, Tea - 1.30") into one
row per value; `extract` splits one text field into typed parts by a regular expression
with named groups.
"""

from __future__ import annotations

import polars as pl

from chute.errors import TransformError


def explode_list(frame: pl.DataFrame, column: str, separator: str = ",", *, position: str | None = None,
                 strip: bool = True, drop_empty: bool = True) -> pl.DataFrame:
    """One row per `separator`-separated value of `column`; other columns are repeated.

    position: name of a new column numbering the values within their original row (1, 2, ...).
    A NULL field gives no row when drop_empty, else one row with NULL.
    """
    if column not in frame.columns:
        raise TransformError(f"explode: column {column!r} not in the data (it has: {', '.join(frame.columns)})")
    if not separator:
        raise TransformError("explode: the separator must not be empty")
    parts = pl.col(column).cast(pl.String).str.split(separator, inclusive=False)
    if strip:
        parts = parts.list.eval(pl.element().str.strip_chars())
    if drop_empty:
        parts = parts.list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
    out = frame.with_columns(parts.alias(column))
    explode = [column]
    if position:
        out = out.with_columns(pl.int_ranges(1, pl.col(column).list.len() + 1, dtype=pl.Int32).alias(position))
        explode.append(position)
    if drop_empty:
        out = out.filter(pl.col(column).list.len() > 0)
    return out.explode(explode)


def extract(frame: pl.DataFrame, column: str, pattern: str, *, keep: bool = False, strict: bool = True) -> pl.DataFrame:
    """New columns from the named groups of `pattern` matched against `column`.

    strict: a non-NULL value that does not match is an error naming it (else its parts are NULL).
    keep: keep the original column.
    """
    if column not in frame.columns:
        raise TransformError(f"extract: column {column!r} not in the data (it has: {', '.join(frame.columns)})")
    try:
        parts = frame.select(pl.col(column).cast(pl.String).str.extract_groups(pattern).alias("_parts"))
    except pl.exceptions.ComputeError as exc:
        raise TransformError(f"extract: bad pattern {pattern!r}: {str(exc).splitlines()[0]}") from None
    fields = [f.name for f in parts.schema["_parts"].fields]
    if not fields or all(f.isdigit() for f in fields):
        raise TransformError(f"extract: the pattern {pattern!r} needs named groups like (?P<size>...)")
    unpacked = parts.unnest("_parts")
    if strict:
        matched = pl.col(column).is_null() | pl.col(column).cast(pl.String).str.contains(pattern)
        bad = frame.filter(~matched)
        if bad.height:
            sample = bad.get_column(column).head(1).to_list()[0]
            raise TransformError(f"extract: {bad.height} value(s) of {column!r} do not match the pattern, "
                                 f"e.g. {str(sample)[:120]!r}")
    clash = [f for f in fields if f in frame.columns and f != column]
    if clash:
        raise TransformError(f"extract: group name(s) {', '.join(clash)} are already columns")
    out = frame.with_columns(unpacked)
    return out if keep or column in fields else out.drop(column)

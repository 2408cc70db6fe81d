"""Null markers: which unquoted values a column read as NULL, counted for the schema shown.

The set is [source] null_values (config.project.DEFAULT_NULLS unless replaced). It applies to
every column of a file, as in pandas and R: an unquoted `NA` is a missing value whether the
column holds numbers, dates or text; a quoted "NA" is always the text NA (R's write.csv quotes
text and writes NA bare). A text column of short upper-case codes (country, continent, state)
that loses an `NA` is flagged in the schema shown, since there NA may be Namibia or North America.
"""

from __future__ import annotations

import polars as pl

_CODE = r"^[A-Z]{1,3}$"


def marker_counts(text: pl.Series, markers: list[str]) -> dict[str, int]:
    """How often each non-empty marker occurs in a column read as text (a sample)."""
    wanted = [m for m in markers if m]
    if not wanted or text.dtype != pl.String:
        return {}
    found = text.filter(text.is_in(wanted)).value_counts()
    return {row[0]: int(row[1]) for row in found.iter_rows()}


def code_like(text: pl.Series, markers: list[str]) -> bool:
    """Whether most of a text column's other values are short upper-case codes (US, EU, AF)."""
    others = text.drop_nulls().filter(~text.drop_nulls().is_in(markers)).unique().head(1000)
    return others.len() > 0 and int(others.str.contains(_CODE).sum()) * 2 >= others.len()

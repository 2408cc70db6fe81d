"""Report-style spreadsheets: several small tables on one sheet, separated by blank rows,
each with a title row and a two-row header:

                          Headcount                   Percentage
    Other entities        Female    Male    Total     Female   Male
    Legal Aid Queensland  480       143     623       0.77     0.23

`sub_tables` cuts such a sheet (read with header = false, so its columns are f0, f1, ...
and blank rows are kept) into frames with names built from both header rows:
other_entities, headcount_female, headcount_male, headcount_total, percentage_female, ...
Values stay text; cast them once the table is chosen.
"""

from __future__ import annotations

import re

import polars as pl

from chute.errors import TransformError


def snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def sub_tables(sheet: pl.DataFrame, exclude: tuple[str, ...] = ()) -> list[pl.DataFrame]:
    """Every two-row-header table on the sheet, in order. `exclude` names columns to ignore
    (such as the source_file column). A block without such a header is skipped."""
    cells = [c for c in sheet.columns if c not in exclude]
    if not cells:
        return []
    text = [pl.col(c).cast(pl.String).str.strip_chars() for c in cells]
    blank = pl.all_horizontal([t.is_null() | (t == "") for t in text])
    blocks = (sheet.select([t.alias(c) for t, c in zip(text, cells)])
              .with_columns(_block=blank.cum_sum(), _blank=blank)
              .filter(~pl.col("_blank")).drop("_blank")
              .partition_by("_block", maintain_order=True, include_key=False))
    return [table for block in blocks if (table := _table(block, cells)) is not None]


def _table(block: pl.DataFrame, cells: list[str]) -> pl.DataFrame | None:
    rows = block.rows()
    # The group row: no label in the first cell, group titles ("Headcount") further right.
    start = next((i for i, r in enumerate(rows[:-1]) if r[0] is None and any(v is not None for v in r[1:])), None)
    if start is None:
        return None
    groups, titles = rows[start], rows[start + 1]
    names, group = [], ""
    for i, (g, t) in enumerate(zip(groups, titles)):
        group = g if g is not None else group  # a group title spans the columns after it
        if t is None:
            names.append(None)
        elif i == 0:
            names.append(snake(t))
        else:
            names.append(snake(f"{group} {t}"))
    if names[0] is None or len({n for n in names if n}) != len([n for n in names if n]):
        raise TransformError(f"a table's header gives no label column or repeats a name: {names}")
    keep = {c: n for c, n in zip(cells, names) if n}
    return block.slice(start + 2).select(list(keep)).rename(keep)

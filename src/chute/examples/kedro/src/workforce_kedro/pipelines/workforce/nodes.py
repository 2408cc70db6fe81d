"""Pure functions over pandas frames: no chute in here, this is a plain Kedro project.

`sheet` holds the cells of sheet "pg 18 and 19 gender" as text (columns f0, f1, ... under chute,
0, 1, ... under `kedro run`), blank rows included, and under chute `source_file` (the workbook's
name) and `source_row`. The sheet has several small tables separated by blank rows, each with a
two-row header:

                          Headcount                   Percentage
    Other entities        Female    Male    Total     Female   Male
    Legal Aid Queensland  480       143     623       0.77     0.23
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pandas as pd

COUNTS = ["female", "male", "total"]
PERCENTAGES = ["female", "male"]
INTERNAL = ("source_file", "source_row")


def snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().lower()).strip("_")


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""


def _blocks(cells: pd.DataFrame) -> list[pd.DataFrame]:
    """The runs of non-blank rows."""
    blank = cells.apply(lambda row: all(_blank(v) for v in row), axis=1)
    block_id = blank.cumsum()
    return [block for _, block in cells[~blank].groupby(block_id[~blank], sort=False)]


def _header(block: pd.DataFrame) -> tuple[list[str | None], int] | None:
    """Column names from a block's two header rows (the group row has no label in its first cell),
    and where the data starts; None for a block without such a header (a title)."""
    rows = block.values.tolist()
    for i in range(len(rows) - 1):
        if _blank(rows[i][0]) and any(not _blank(v) for v in rows[i][1:]):
            names, group = [], ""
            for j, (g, t) in enumerate(zip(rows[i], rows[i + 1])):
                group = group if _blank(g) else str(g)  # a group title spans the columns after it
                names.append(None if _blank(t) else snake(t) if j == 0 else snake(f"{group} {t}"))
            return names, i + 2
    return None


def cut_table(sheet: pd.DataFrame, table_label: str, measure: str) -> pd.DataFrame:
    """Of every workbook in `sheet`, the one table headed `table_label` whose counts are `measure`;
    its cells as text, columns named from both header rows (other_entities, headcount_female, ...)."""
    label, wanted = snake(table_label), snake(measure)
    columns = [label, *(f"{wanted}_{c}" for c in COUNTS), *(f"percentage_{c}" for c in PERCENTAGES)]
    has_file = "source_file" in sheet.columns
    out = []
    for name, workbook in (sheet.groupby("source_file", sort=False) if has_file else [(None, sheet)]):
        cells = workbook.drop(columns=[c for c in INTERNAL if c in workbook.columns])
        found = []
        for block in _blocks(cells):
            header = _header(block)
            if header is None:
                continue
            names, start = header
            if {n for n in names if n} == set(columns):
                keep = {c: n for c, n in zip(block.columns, names) if n}
                found.append(block.iloc[start:][list(keep)].rename(columns=keep)[columns])
        if len(found) != 1:
            raise ValueError(f"{name or 'the sheet'}: expected one table headed {table_label!r} with {measure} "
                             f"columns, found {len(found)}")
        table = found[0].rename(columns={f"{wanted}_{c}": f"headcount_{c}" for c in COUNTS})
        table.insert(0, "report", PurePosixPath(name).stem if name else "")
        table["source_file"] = name
        out.append(table)
    return pd.concat(out, ignore_index=True)


def _numbers(cells: pd.Series, column: str, whole: bool) -> pd.Series:
    """Text cells as numbers (Python's own float(): exactly the double the text names)."""
    out = []
    for v in cells:
        if _blank(v):
            out.append(None)
            continue
        try:
            x = float(str(v).strip())
        except ValueError:
            raise ValueError(f"{column}: {v!r} is not a number") from None
        if whole and not x.is_integer():
            raise ValueError(f"{column}: {v!r} is not a whole number")
        out.append(int(x) if whole else x)
    return pd.Series(pd.array(out, dtype="Int64" if whole else "Float64"), index=cells.index)


def to_numbers(cells: pd.DataFrame) -> pd.DataFrame:
    """Sector totals left out (sums, not entities); counts as whole numbers, percentages as fractions."""
    table = cells[~cells["other_entities"].astype(str).str.contains(r"(?i)^sector (?:sub-)?total")].copy()
    for c in COUNTS:
        table[f"headcount_{c}"] = _numbers(table[f"headcount_{c}"], f"headcount_{c}", whole=True)
    for c in PERCENTAGES:
        table[f"percentage_{c}"] = _numbers(table[f"percentage_{c}"], f"percentage_{c}", whole=False)
    return table


def check_and_shape(table: pd.DataFrame, percent_tolerance: float) -> pd.DataFrame:
    """Not null; female + male = total; the two percentages add up to 100 %."""
    def fail(rule: str, bad: pd.Series) -> None:
        names = ", ".join(table.loc[bad, "other_entities"].fillna("(no name)").astype(str).head(5))
        raise ValueError(f"{int(bad.sum())} row(s) break the rule {rule}: {names}")

    values = table.drop(columns=["source_file"])
    nulls = values.isna().any(axis=1)
    if nulls.any():
        fail("'no empty cells'", nulls)
    sums = table["headcount_female"] + table["headcount_male"] != table["headcount_total"]
    if sums.any():
        fail("'headcount_female + headcount_male = headcount_total'", sums)
    percent = (table["percentage_female"] + table["percentage_male"] - 1).abs() > percent_tolerance
    if percent.any():
        fail(f"'percentage_female + percentage_male = 100 % (within {percent_tolerance})'", percent)
    return table.reset_index(drop=True)

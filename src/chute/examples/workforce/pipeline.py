"""Workforce reports: one sub-table of a report sheet, rebuilt and checked.

`sheet` holds the cells of sheet "pg 18 and 19 gender" as text (columns f0, f1, ...), blank
rows included, plus `source_file`. The table wanted is the one headed "Other entities" under
"Headcount"; its sector total rows are sums, not entities, and are left out.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import polars as pl

from chute import TransformError, node
from chute.transforms.sheets import sub_tables

COLUMNS = ["headcount_female", "headcount_male", "headcount_total", "percentage_female", "percentage_male"]


def pick_table(sheet: pl.DataFrame, label: str, measure: str) -> pl.DataFrame:
    wanted = {label, *(c.replace("headcount", measure) for c in COLUMNS)}
    tables = [t for t in sub_tables(sheet, exclude=("source_file", "source_row")) if set(t.columns) == wanted]
    if len(tables) != 1:
        raise TransformError(f"expected one table headed {label!r} with {measure} columns on the sheet, "
                             f"found {len(tables)}")
    return tables[0].rename({c.replace("headcount", measure): c for c in COLUMNS})


def check(table: pl.DataFrame, tolerance: float) -> None:
    """Not null; female + male = total; the two percentages add up to 100 %."""
    def fail(rule: str, bad: pl.DataFrame) -> None:
        names = ", ".join(bad.get_column("other_entities").cast(pl.String).fill_null("(no name)").head(5))
        raise TransformError(f"{bad.height} row(s) break the rule {rule}: {names}")

    nulls = table.filter(pl.any_horizontal(pl.all().is_null()))
    if nulls.height:
        fail("'no empty cells'", nulls)
    sums = table.filter(pl.col("headcount_female") + pl.col("headcount_male") != pl.col("headcount_total"))
    if sums.height:
        fail("'headcount_female + headcount_male = headcount_total'", sums)
    percent = table.filter((pl.col("percentage_female") + pl.col("percentage_male") - 1).abs() > tolerance)
    if percent.height:
        fail(f"'percentage_female + percentage_male = 100 % (within {tolerance})'", percent)


@node(outputs="headcount_by_gender_other_entities")
def other_entities_by_gender(sheet: pl.DataFrame, table_label: str, measure: str,
                             percent_tolerance: float) -> pl.DataFrame:
    out = []
    for workbook in sheet.partition_by("source_file", maintain_order=True):  # tables never span files
        name = workbook.get_column("source_file")[0]
        table = pick_table(workbook, table_label, measure)
        table = table.filter(~pl.col(table_label).str.contains(r"(?i)^sector (sub-)?total"))
        try:
            table = table.with_columns(
                [pl.col(c).cast(pl.Int64, strict=True) for c in COLUMNS[:3]]  # "208"; "208.5" fails
                + [pl.col(c).cast(pl.Float64, strict=True) for c in COLUMNS[3:]])
        except pl.exceptions.PolarsError as exc:
            raise TransformError(f"{name}: a count or percentage is not a number: {str(exc).splitlines()[0]}") from None
        check(table, percent_tolerance)
        out.append(table.select(
            report=pl.lit(PurePosixPath(name).stem), other_entities=pl.col(table_label), *COLUMNS,
            source_file=pl.lit(name)))
    return pl.concat(out)

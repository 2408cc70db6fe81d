"""The contract models: what a row must satisfy to enter its table, as declared in chute.toml
under [tables.NAME.contract] or in pipeline.py with `Contract(...)`. quality/contracts.py
compiles them into checks; chute.quality exports them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import polars as pl
from pydantic import StrictBool, BaseModel, ConfigDict, Field, field_validator, model_validator

from chute.coltypes import parse_type
from chute.errors import ConfigError

Drift = Literal["freeze", "evolve", "discard"]


class ColumnRules(BaseModel):
    """Checks on one column. Null values pass every check but `not_null`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = None  # the value must convert to this type (beyond the column's declared type)
    not_null: StrictBool = False
    unique: StrictBool = False  # no two rows of one load share the value
    min: float | int | str | None = None
    max: float | int | str | None = None
    allowed: list[Any] | None = None
    regex: str | None = None

    @field_validator("type")
    @classmethod
    def _type_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_type(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value


class Rule(BaseModel):
    """A custom check over whole rows: a polars expression (Python) or a SQL expression
    (chute.toml, parsed by polars' `pl.sql_expr`) that is TRUE for good rows."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    message: str = Field(min_length=1)
    sql: str | None = None
    expr: Any = Field(None, exclude=True)  # a pl.Expr, from Python only
    column: str | None = None  # the column to blame in quarantine (optional)

    @model_validator(mode="after")
    def _one_expression(self) -> "Rule":
        if (self.sql is None) == (self.expr is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of sql (a SQL expression) or expr (a polars expression)")
        if self.expr is not None and not isinstance(self.expr, pl.Expr):
            raise ValueError(f"rule {self.name!r}: expr must be a polars expression, got {type(self.expr).__name__}")
        if self.sql is not None:
            try:
                pl.sql_expr(self.sql)
            except Exception as exc:
                raise ValueError(f"rule {self.name!r}: sql {self.sql!r} does not parse: {exc}") from None
        return self

    def good(self) -> pl.Expr:
        return self.expr if self.expr is not None else pl.sql_expr(self.sql)


class Contract(BaseModel):
    """The contract of one target table.

    In pipeline.py, a module-level `Contract(table="trades", ...)` applies to [tables.trades];
    it adds to a contract declared in chute.toml (its own settings win where both set one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    table: str | None = None  # needed in Python; implied by the key in chute.toml
    drift: Drift = "freeze"  # columns the data has but the table lacks, or lacks but the table has
    max_reject_ratio: float | None = Field(None, ge=0, le=1)  # fail a file rejecting more of its rows
    max_rejects: int | None = Field(None, ge=0)  # fail a file rejecting more rows than this
    # fail a file that brings the table fewer rows than this (1: a table that must never be
    # empty; by default a file with a header and no rows loads with 0 rows)
    min_rows: int | None = Field(None, ge=0)
    columns: dict[str, ColumnRules] = {}
    rules: list[Rule] = []

    def __init__(self, table: str | None = None, /, **data: Any) -> None:
        if table is not None:
            data["table"] = table
        super().__init__(**data)

    def merged(self, other: "Contract | None") -> "Contract":
        """This contract with `other`'s rules added and its explicitly set settings on top."""
        if other is None:
            return self
        columns = dict(self.columns)
        for name, rules in other.columns.items():
            base = columns.get(name)
            columns[name] = base.model_copy(update=rules.model_dump(exclude_unset=True)) if base else rules
        settings = {k: getattr(other, k) for k in ("drift", "max_reject_ratio", "max_rejects", "min_rows")
                    if k in other.model_fields_set}
        return self.model_copy(update={**settings, "columns": columns, "rules": [*self.rules, *other.rules]})

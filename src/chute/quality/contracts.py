"""Data contracts: what a row must satisfy to enter its table, declared in chute.toml under
[tables.NAME.contract] or in pipeline.py with `Contract(...)`.

A contract compiles to polars expressions, one boolean "this row is bad" per check, that the
gate (gate.py) evaluates over a whole frame at once. Nothing here loops over rows.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl
from chute.coltypes import ColumnType, cast_expr, convert_text, parse_type
from chute.config.contracts import ColumnRules, Contract
from chute.errors import ConfigError

if TYPE_CHECKING:
    from chute.db.target import Target

class Check:
    """One compiled check: `bad` is TRUE for rows that fail it (never null)."""

    __slots__ = ("name", "column", "bad", "reason")

    def __init__(self, name: str, column: str | None, bad: pl.Expr, reason: str):
        self.name, self.column, self.bad, self.reason = name, column, bad.fill_null(False), reason


def compile_checks(contract: Contract | None, columns: dict[str, ColumnType], primary_key: list[str],
                   mode: str) -> list[Check]:
    """The checks a frame (already cast to the table's types) must pass, besides the types.

    Every table gets: primary-key columns not null, and (append and replace) unique key, and
    varchar(n) lengths; merge keeps the last row of a repeated key, so no unique check there.
    """
    checks: list[Check] = []
    for name in primary_key:
        checks.append(Check("not_null", name, pl.col(name).is_null(), "missing value in a primary-key column"))
    if primary_key and mode != "merge":
        key = pl.struct(primary_key) if len(primary_key) > 1 else pl.col(primary_key[0])
        checks.append(Check("unique", ",".join(primary_key), ~key.is_first_distinct(),
                            f"duplicate primary key ({', '.join(primary_key)}) within the load"))
    for name, type_ in columns.items():
        if m := re.match(r"varchar\((\d+)\)$", type_.sql):
            n = int(m[1])
            checks.append(Check("length", name, pl.col(name).str.len_chars() > n, f"longer than {n} characters"))
    if contract is None:
        return checks
    for name, rules in contract.columns.items():
        if name not in columns:
            raise ConfigError(f"contract of table {contract.table}: column {name!r} is not a column of the table "
                              f"(columns: {', '.join(columns)})")
        checks.extend(_column_checks(name, rules, columns[name]))
    for rule in contract.rules:
        checks.append(Check(rule.name, rule.column, ~rule.good(), rule.message))
    return checks


def _column_checks(name: str, rules: ColumnRules, type_: ColumnType) -> list[Check]:
    col = pl.col(name)
    out = []
    if rules.type is not None:
        wanted = parse_type(rules.type)
        converted = convert_text(col.cast(pl.String), wanted.polars)
        out.append(Check("type", name, col.is_not_null() & converted.is_null(), f"not a valid {wanted.name}"))
    if rules.not_null:
        out.append(Check("not_null", name, col.is_null(), "missing value (not null)"))
    if rules.unique:
        out.append(Check("unique", name, col.is_not_null() & ~col.is_first_distinct(), "duplicate value (unique)"))
    if rules.min is not None:
        out.append(Check("min", name, col < _literal(rules.min, type_), f"below the minimum {rules.min}"))
    if rules.max is not None:
        out.append(Check("max", name, col > _literal(rules.max, type_), f"above the maximum {rules.max}"))
    if rules.allowed is not None:
        shown = ", ".join(map(str, rules.allowed[:10])) + (", ..." if len(rules.allowed) > 10 else "")
        allowed = pl.Series(rules.allowed).cast(type_.polars, strict=False)
        out.append(Check("allowed", name, ~col.is_in(allowed.implode()), f"not one of the allowed values ({shown})"))
    if rules.regex is not None:
        out.append(Check("regex", name, ~col.cast(pl.String).str.contains(rules.regex), f"does not match {rules.regex}"))
    return out


def _literal(value: Any, type_: ColumnType) -> pl.Expr:
    """A bound in the column's type (so '2020-01-01' compares with a date column)."""
    series = pl.Series("v", [value])
    converted = series.to_frame().select(cast_expr("v", series.dtype, type_.polars)).to_series()
    if converted[0] is None:
        raise ConfigError(f"bound {value!r} is not a valid {type_.name}")
    return pl.lit(converted[0], dtype=type_.polars)


def contracts_of(tables: dict[str, Any], python: list[Contract]) -> dict[str, Contract]:
    """Table name -> its contract: chute.toml's [tables.NAME.contract] merged with pipeline.py's."""
    out: dict[str, Contract] = {name: t.contract.model_copy(update={"table": name})
                                for name, t in tables.items() if t.contract is not None}
    for contract in python:
        if not contract.table:
            raise ConfigError("a Contract in pipeline.py needs its table: Contract('my_table', ...)")
        if contract.table not in tables:
            raise ConfigError(f"pipeline.py has a Contract for table {contract.table!r}, which chute.toml does not "
                              f"declare (tables: {', '.join(tables) or 'none'})")
        base = out.get(contract.table)
        out[contract.table] = base.merged(contract) if base else contract
    return out


def adopt_columns(conn, targets: dict[str, "Target"], contracts: dict[str, Contract]) -> None:
    """Tables with drift = 'evolve' may have columns added by earlier runs: load them too."""
    from chute.db.postgres import existing_columns

    for name, target in targets.items():
        contract = contracts.get(name)
        if contract is None or contract.drift != "evolve":
            continue
        for column, sql_type in (existing_columns(conn, target.schema, target.table) or {}).items():
            if column not in target.columns:
                try:
                    target.columns[column] = parse_type(sql_type)
                except Exception:  # a type chute cannot load: leave the column alone (NULL)
                    continue

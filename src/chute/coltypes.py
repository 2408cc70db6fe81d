"""Column types a user can declare, and what each means in PostgreSQL and in Arrow/polars.

One table keeps the two sides consistent: binary COPY needs the Arrow type of each
column to match the PostgreSQL column it lands in, so chute creates tables from the same
declaration it casts frames to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from chute.errors import ConfigError


@dataclass(frozen=True)
class ColumnType:
    name: str  # as the user wrote it, normalised
    sql: str  # DDL type
    polars: pl.DataType


_SIMPLE: dict[str, tuple[str, pl.DataType]] = {
    "text": ("text", pl.String()),
    "smallint": ("smallint", pl.Int16()),
    "integer": ("integer", pl.Int32()),
    "bigint": ("bigint", pl.Int64()),
    "real": ("real", pl.Float32()),
    "double": ("double precision", pl.Float64()),
    "boolean": ("boolean", pl.Boolean()),
    "date": ("date", pl.Date()),
    "timestamp": ("timestamp", pl.Datetime("us")),
    "timestamptz": ("timestamptz", pl.Datetime("us", "UTC")),
    "time": ("time", pl.Time()),
}

_ALIASES = {
    "string": "text", "str": "text",
    "int2": "smallint", "int16": "smallint",
    "int": "integer", "int4": "integer", "int32": "integer",
    "int8": "bigint", "int64": "bigint",
    "float4": "real", "float32": "real",
    "float": "double", "float8": "double", "float64": "double", "double precision": "double",
    "bool": "boolean",
    "datetime": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "character varying": "text",
}

_VARCHAR = re.compile(r"^(?:varchar|character varying)\s*\(\s*(\d+)\s*\)$")
_NUMERIC = re.compile(r"^(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")

SUPPORTED = sorted(_SIMPLE) + ["varchar(n)", "numeric(p,s)"]


def parse_type(text: str) -> ColumnType:
    """'double', 'varchar(56)', 'numeric(12,4)' ... -> ColumnType; ConfigError otherwise."""
    key = " ".join(text.strip().lower().split())
    key = _ALIASES.get(key, key)
    if key in _SIMPLE:
        sql, dtype = _SIMPLE[key]
        return ColumnType(key, sql, dtype)
    if m := _VARCHAR.match(key):
        return ColumnType(key, f"varchar({int(m[1])})", pl.String())
    if m := _NUMERIC.match(key):
        precision, scale = int(m[1]), int(m[2] or 0)
        if not 0 < precision <= 38 or scale > precision:
            raise ConfigError(f"numeric({precision},{scale}): precision must be 1..38 and scale <= precision")
        return ColumnType(key, f"numeric({precision},{scale})", pl.Decimal(precision, scale))
    raise ConfigError(f"unknown column type {text!r}; use one of: {', '.join(SUPPORTED)}")


def from_polars(dtype: pl.DataType) -> ColumnType:
    """The declared type chute infers for a polars column (used by `chute load`)."""
    if dtype == pl.Boolean:
        return parse_type("boolean")
    if dtype.is_integer():
        return parse_type("bigint")
    if dtype.is_float():
        return parse_type("double")
    if dtype == pl.Date:
        return parse_type("date")
    if isinstance(dtype, pl.Datetime):
        return parse_type("timestamptz" if dtype.time_zone else "timestamp")
    if dtype == pl.Time:
        return parse_type("time")
    if isinstance(dtype, pl.Decimal):
        return parse_type(f"numeric({dtype.precision},{dtype.scale})")
    return parse_type("text")


_BOOLEAN_TEXT = {"true": True, "t": True, "yes": True, "y": True, "1": True,
                 "false": False, "f": False, "no": False, "n": False, "0": False}


def convert_text(text: pl.Expr, target: pl.DataType, fmt: str | None = None) -> pl.Expr:
    """Text parsed as `target` (dates and times with `fmt` when given), NULL where a value
    does not parse (never an error)."""
    if fmt and (target is None or target in (pl.Date, pl.Time) or isinstance(target, pl.Datetime)):
        return parse_temporal(text, fmt, target)
    if target == pl.Date:
        return text.str.strip_chars().str.to_date(strict=False)
    if target == pl.Time:
        return parse_temporal(text, "%H:%M:%S%.f", target)
    if isinstance(target, pl.Datetime):
        return text.str.strip_chars().str.to_datetime(time_unit=target.time_unit, time_zone=target.time_zone,
                                                      strict=False)
    if target == pl.Boolean:
        return text.str.strip_chars().str.to_lowercase().replace_strict(_BOOLEAN_TEXT, default=None,
                                                                        return_dtype=pl.Boolean)
    if target == pl.String:
        return text
    return text.str.strip_chars().cast(target, strict=False)


def cast_expr(column: str, source: pl.DataType, target: pl.DataType, fmt: str | None = None) -> pl.Expr:
    """`column` converted to `target`, NULL where a value does not convert (never an error).

    polars 2 no longer casts text to dates, times or booleans; those are parsed instead.
    """
    col = pl.col(column)
    if source == target:
        return col
    if source == pl.String:
        return convert_text(col, target, fmt)
    return col.cast(target, strict=False)


def kind_of_format(fmt: str) -> str:
    """'date', 'datetime' or 'time': what a given format reads."""
    has_date = bool(re.search(r"%[YymdbBejDFv]", fmt))
    has_time = bool(re.search(r"%[HIMSTRpfzcs]|%[.:#]", fmt))
    return "datetime" if has_date and has_time else "time" if has_time else "date"


def has_offset(fmt: str) -> bool:
    return bool(re.search(r"%[#:]?z", fmt))


def parse_temporal(text: pl.Expr, fmt: str, target: pl.DataType | None = None) -> pl.Expr:
    """Text parsed with `fmt` into `target` (pl.Date, pl.Datetime, pl.Time; default: what the
    format reads), NULL where a value does not parse."""
    s = text.str.strip_chars()
    kind = kind_of_format(fmt)
    if target is None:
        target = {"date": pl.Date(), "time": pl.Time()}.get(kind) or pl.Datetime("us", "UTC" if has_offset(fmt) else None)
    if target == pl.Date:
        if kind == "datetime":
            return s.str.to_datetime(fmt, strict=False, time_unit="us").dt.date()
        return s.str.to_date(fmt, strict=False)
    if target == pl.Time:
        return s.str.to_time(fmt, strict=False)
    if isinstance(target, pl.Datetime):
        if kind == "date":
            out = s.str.to_date(fmt, strict=False).cast(pl.Datetime(target.time_unit))
        else:
            out = s.str.to_datetime(fmt, strict=False, time_unit=target.time_unit)
        if target.time_zone and not has_offset(fmt):
            return out.dt.replace_time_zone(target.time_zone)
        if has_offset(fmt):
            out = out.dt.convert_time_zone("UTC")
            return out if target.time_zone else out.dt.replace_time_zone(None)
        return out
    return s.str.to_datetime(fmt, strict=False, time_unit="us").cast(target, strict=False)

"""A target table as the loader sees it (kept apart from loader.py so that code which only
needs the description, like a run with nothing to load, does not import pyarrow and pgpq)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chute.coltypes import ColumnType


@dataclass
class Target:
    schema: str
    table: str
    mode: str
    columns: dict[str, ColumnType]
    primary_key: list[str]
    truncated: bool = False  # replace mode empties the table once per run
    foreign_keys: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # column -> (schema, table, column)

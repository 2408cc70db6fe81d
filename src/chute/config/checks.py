"""Validators shared by the chute.toml models (pydantic turns their ValueError into a message)."""

from __future__ import annotations

from chute.coltypes import parse_type
from chute.errors import ConfigError


def check_types(columns: dict[str, str]) -> dict[str, str]:
    """Each column's type parses (column -> type name, as [tables.*.columns] or a cast step give them)."""
    for name, text in columns.items():
        try:
            parse_type(text)
        except ConfigError as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
    return columns

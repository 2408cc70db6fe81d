"""A target table as the loader sees it, and the targets of a project in load order (kept apart from loader.py so that code which only
needs the description, like a run with nothing to load, does not import pyarrow and pgpq)."""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from chute.coltypes import ColumnType
from chute.errors import ConfigError

if TYPE_CHECKING:
    from chute.config.project import Project


@dataclass
class Target:
    schema: str
    table: str
    mode: str
    columns: dict[str, ColumnType]
    primary_key: list[str]
    truncated: bool = False  # replace mode empties the table once per run
    foreign_keys: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # column -> (schema, table, column)
    # Columns left to inference (chute.toml declares none): `columns` is empty until the table
    # exists (adopted by ensure_table) or its first rows create it (quality/gate.py).
    inferred: bool = False
    names: str = "normalize"  # inferred: the data's names in snake_case, or "keep"
    formats: dict[str, str] = field(default_factory=dict)  # inferred: date/time formats found in text columns


def targets_of(project: "Project") -> dict[str, Target]:
    """The tables, parents before the tables whose foreign keys point at them."""
    graph = {name: {ref.partition(".")[0] for ref in t.foreign_keys.values()} - {name}
             for name, t in project.tables.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ConfigError(f"the tables' foreign keys form a cycle: {' -> '.join(exc.args[1])}") from None
    targets = {}
    for name in order:
        t = project.tables[name]
        fks = {col: (project.tables[ref.partition(".")[0]].schema_, *ref.split(".", 1))
               for col, ref in t.foreign_keys.items()}
        targets[name] = Target(t.schema_, name, t.mode, t.column_types(), list(t.primary_key), foreign_keys=fks,
                               inferred=t.inferred, names=t.names)
    return targets

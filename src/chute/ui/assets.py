"""Target tables as assets: what the table page and the tables list say about each one.

An asset is a table chute writes: one of the project's [tables.NAME], or a table `chute load`
wrote (its runs are under the pipeline `load:SCHEMA.TABLE`). Its freshness is the time since
the last run that wrote rows into it, against the table's `fresh_within` in chute.toml.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from chute.coltypes import parse_type
from chute.config.project import Project, Table
from chute.errors import ConfigError
from chute.ui import queries as q

LOAD_PREFIX = "load:"


@dataclass(frozen=True)
class Asset:
    key: str  # the URL's name: NAME of [tables.NAME], or load:SCHEMA.TABLE
    schema: str
    table: str
    pipeline: str  # whose runs write it
    config: Table | None  # None for a `chute load` table

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def loaded_by_command(self) -> bool:
        return self.config is None


def project_assets(project: Project) -> list[Asset]:
    return [Asset(name, t.schema_, name, project.name, t) for name, t in project.tables.items()]


def load_asset(pipeline: str) -> Asset | None:
    """The asset of a `chute load` pipeline name, load:SCHEMA.TABLE."""
    if not pipeline.startswith(LOAD_PREFIX):
        return None
    schema, _, table = pipeline[len(LOAD_PREFIX):].rpartition(".")
    return Asset(pipeline, schema or "public", table, pipeline, None) if table else None


def find(project: Project, key: str) -> Asset | None:
    if key in project.tables:
        return project_assets(project)[list(project.tables).index(key)]
    return load_asset(key)


def same_type(declared: str, actual: str) -> bool:
    """Whether PostgreSQL's type (format_type) is the declared one, aliases aside."""
    try:
        return parse_type(declared).sql == parse_type(actual).sql
    except ConfigError:
        return declared.strip().lower() == actual.strip().lower()


def schema_rows(asset: Asset, actual: dict[str, str]) -> list[dict[str, Any]]:
    """Declared columns against PostgreSQL's, in table order, then declared ones the table lacks."""
    declared = asset.config.columns if asset.config else {}
    rows = []
    for column, pg_type in actual.items():
        want = declared.get(column)
        state = "ok" if want is None and asset.config is None else (
            "undeclared" if want is None else "ok" if same_type(want, pg_type) else "differs")
        rows.append({"column": column, "actual": pg_type, "declared": want, "state": state})
    for column, want in declared.items():
        if column not in actual:
            rows.append({"column": column, "actual": None, "declared": want, "state": "missing"})
    return rows


def freshness(last_change: dt.datetime | None, expected: float | None, now: dt.datetime) -> dict[str, Any]:
    """fresh / stale / unknown (no expectation) / never (no run wrote it), with the age in seconds."""
    age = (now - last_change).total_seconds() if last_change else None
    if expected is None:
        state = "unknown" if last_change else "never"
    elif last_change is None or age > expected:
        state = "stale"
    else:
        state = "fresh"
    return {"state": state, "age": age, "expected": expected, "last_change": last_change}


def summary(conn: psycopg.Connection, asset: Asset, now: dt.datetime, *, deep: bool = False) -> dict[str, Any]:
    """What the list shows of a table (row count, last change, freshness); `deep` adds what its
    page shows (schema, the runs and files that fed it, rejects, latest rows)."""
    info = q.table_info(conn, asset.schema, asset.table, preview=20 if deep else 0)
    runs = q.table_runs(conn, asset.pipeline, asset.table, limit=200 if deep else 1) if q.has_ledger(conn) else []
    last = runs[0]["ended_at"] or runs[0]["started_at"] if runs else None
    out: dict[str, Any] = {
        "asset": asset, **info,
        "fresh": freshness(last, asset.config.fresh_seconds() if asset.config else None, now),
        "last_run": runs[0] if runs else None,
    }
    if deep:
        out["schema_rows"] = schema_rows(asset, info["columns"])
        out["runs"] = runs
        out["files"] = q.files_of_runs(conn, asset.pipeline, [r["run_id"] for r in runs[:50]])
        out["rejects"] = q.table_rejects(conn, asset.pipeline, asset.qualified)
        out["contract"] = contract_lines(asset.config)
    return out


def contract_lines(config: Table | None) -> list[tuple[str, str]]:
    """The table's contract as (what, rule) lines a person reads; [] when it has none."""
    contract = config.contract if config else None
    if contract is None:
        return []
    lines = [("drift", contract.drift)]
    if contract.max_reject_ratio is not None:
        lines.append(("a file fails above", f"{contract.max_reject_ratio:.0%} of its rows rejected"))
    if contract.max_rejects is not None:
        lines.append(("a file fails above", f"{contract.max_rejects:,} rejected rows"))
    for column, rules in contract.columns.items():
        said = []
        for key, value in rules.model_dump(exclude_defaults=True).items():
            said.append(key.replace("_", " ") if value is True else f"{key.replace('_', ' ')} {value}")
        if said:
            lines.append((column, ", ".join(said)))
    for rule in contract.rules:
        lines.append((rule.name, f"{rule.sql or 'a polars expression'}: {rule.message}"))
    return lines

"""`chute load FILE --into TABLE`: a project made on the fly for one file.

The file goes through the same runner, loader and ledger as any project (pipeline name
`load:SCHEMA.TABLE`), so loading the same content twice does nothing.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from chute.coltypes import from_polars, parse_type
from chute.db.postgres import connect, existing_columns
from chute.errors import ConfigError, FileError, options_named
from chute.formats.csv import read_csv
from chute.config.project import project_from_dict
from chute.run.runner import Runner
from chute.ledger.summary import RunSummary
from chute.db.resolve import resolve_database

if TYPE_CHECKING:
    from chute.run.replay import ReplayResult


# The options of `chute load` that stand for chute.toml settings, for messages to name.
OPTIONS = {"encoding": "--encoding", "quote": "--quote", "drift": "--drift", "delimiter": "--delimiter"}


def load_file(file: Path, table: str, *, mode: str = "append", primary_key: list[str] | None = None,
              types: tuple[str, ...] = (), delimiter: str = ",", quote: str = '"', encoding: str = "utf-8",
              header: bool = True, drift: str = "freeze", folder: Path = Path("."), db_url: str | None = None,
              folder_chosen: bool = False,
              batch_mb: float = 64, replay: bool = False) -> RunSummary | ReplayResult:
    """Load `file` into `table`, or with `replay` load its quarantined records again. A file
    that failed before is tried again: naming it is asking for it."""
    with options_named(OPTIONS):
        file = file.resolve()
        if not file.is_file():
            raise ConfigError(f"{file}: no such file")
        schema, name = _table_name(table)
        if mode == "merge" and not primary_key:
            raise ConfigError("--mode merge needs --primary-key COL[,COL]: the columns that identify a row")
        overrides = _parse_overrides(types)
        source: dict = {"header": header, "delimiter": delimiter, "quote": quote, "encoding": encoding,
                        "batch_mb": batch_mb}
        url = resolve_database(None, db_url, folder, chosen=folder_chosen)
        with connect(url) as conn:
            existing = existing_columns(conn, schema, name)
        if existing:
            columns = {c: _known_type(c, t, f"{schema}.{name}") for c, t in existing.items()}
        elif replay:
            raise ConfigError(f"--replay: there is no table {schema}.{name}; nothing was loaded into it")
        else:
            columns = _infer(file, source, overrides)
            unknown = [c for c in [*overrides, *(primary_key or [])] if c not in columns]
            if unknown:
                option = "--type" if unknown[0] in overrides else "--primary-key"
                raise ConfigError(f"{option}: {file.name} has no column {unknown[0]!r} "
                                  f"(it has: {', '.join(columns)})")
        # The reader parses with the table's types, so a value that does not fit is a reject
        # of its line, and --replay after ALTER TABLE reads it with the new type.
        source["columns"] = columns
        project = project_from_dict({
            "project": {"name": "load"},
            "landing": {"path": str(file.parent), "patterns": [glob.escape(file.name)], "recursive": False},
            "source": source,
            "pipeline": {"input": name},
            "tables": {name: {"mode": mode, "primary_key": primary_key or [], "columns": columns, "schema": schema,
                              "contract": {"drift": drift}}},
        }, root=folder.resolve(), origin="chute load")
        pipeline = f"load:{schema}.{name}"
        if replay:
            from chute.run.replay import replay as replay_rejects

            return replay_rejects(project, url, pipeline=pipeline, file=file.name)
        summary = Runner(project, url, pipeline_name=pipeline, trigger="load", retry_failed=True).run()
        if summary.unchanged:  # the new options do not reach records quarantined by the earlier load
            from chute.quality.quarantine import pending_records

            with connect(url) as conn:
                summary.pending_rejects = pending_records(conn, pipeline, file.name)
        return summary


def _table_name(table: str) -> tuple[str, str]:
    """--into TABLE or SCHEMA.TABLE -> (schema, table), refusing names PostgreSQL or chute cannot take."""
    parts = table.split(".")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"--into {table!r}: write TABLE or SCHEMA.TABLE, e.g. --into prices or --into sales.prices")
    schema, name = parts if len(parts) == 2 else ("public", parts[0])
    if schema in ("chute", "pg_catalog", "information_schema") or schema.startswith("pg_"):
        raise ConfigError(f"--into {table!r}: schema {schema} belongs to "
                          f"{'chute (its ledger)' if schema == 'chute' else 'PostgreSQL'}; load into another schema")
    too_long = [p for p in parts if len(p.encode()) > 63]
    if too_long:
        raise ConfigError(f"--into {table!r}: {too_long[0]!r} is longer than PostgreSQL's 63-byte names")
    return schema, name


def _parse_overrides(types: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in types:
        column, sep, type_ = item.partition("=")
        if not sep or not column:
            raise ConfigError(f"--type {item!r}: write it as COLUMN=TYPE, e.g. --type price=numeric(12,2)")
        parse_type(type_)
        out[column] = type_
    return out


def _infer(file: Path, source: dict, overrides: dict[str, str]) -> dict[str, str]:
    """Column types from the first block of the file (16 MB), with the user's overrides on top.
    Records that do not parse (ragged, say) do not decide: the run will quarantine them."""
    from chute.config.project import Source
    from chute.formats.salvage import ROW_COLUMN
    from chute.formats.reader import read_records

    options = Source(**source, columns=overrides)
    try:
        first = read_records(_prefix(file), options, 1 << 30)[0].drop(ROW_COLUMN)
    except FileError as head_error:  # gzip, or a first row longer than the prefix: parse the file
        try:
            first = next(read_csv(str(file), options))
        except FileError as exc:  # the record-by-record reading of the head may have said more (the line)
            said = str(head_error) if str(head_error).startswith(str(exc)) else str(exc)
            raise ConfigError(f"{file.name}: {said}") from None
    return {c: overrides.get(c) or from_polars(t).name for c, t in first.schema.items()}


def _prefix(file: Path, size: int = 16 << 20) -> pa.Buffer:
    """The file's first lines, up to `size` bytes. pyarrow's reader parses far ahead of what
    is asked for, so inferring from the path would parse most of a big file."""
    with file.open("rb") as f:
        head = f.read(size)
    if len(head) == size:
        head = head[: head.rfind(b"\n") + 1]
    return pa.py_buffer(head)


def _known_type(column: str, sql_type: str, table: str) -> str:
    try:
        return parse_type(sql_type).name
    except ConfigError:
        raise ConfigError(f"table {table} column {column} has type {sql_type}, which chute cannot load yet") from None

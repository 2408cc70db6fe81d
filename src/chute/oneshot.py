"""`chute load FILE --into TABLE`: a project made on the fly for one file.

The file goes through the same runner, loader and ledger as any project (pipeline name
`load:SCHEMA.TABLE`), so loading the same content twice does nothing.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa

from .coltypes import from_polars, parse_type
from .db.postgres import connect, existing_columns
from .errors import ConfigError, FileError
from .formats.csv import read_csv
from .project import project_from_dict
from .runner import Runner, RunSummary, resolve_database


def load_file(file: Path, table: str, *, mode: str = "append", primary_key: list[str] | None = None,
              types: tuple[str, ...] = (), delimiter: str = ",", encoding: str = "utf-8", header: bool = True,
              folder: Path = Path("."), db_url: str | None = None, batch_mb: float = 64) -> RunSummary:
    file = file.resolve()
    if not file.is_file():
        raise ConfigError(f"{file}: no such file")
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    overrides = _parse_overrides(types)
    source: dict = {"header": header, "delimiter": delimiter, "encoding": encoding, "batch_mb": batch_mb}
    url = resolve_database(None, db_url, folder)
    with connect(url) as conn:
        existing = existing_columns(conn, schema, name)
    if existing:
        columns = {c: _known_type(c, t, f"{schema}.{name}") for c, t in existing.items()}
    else:
        columns = _infer(file, source, overrides)
    if not header:
        source["columns"] = {c: t for c, t in columns.items()}
    elif overrides:
        source["columns"] = overrides
    project = project_from_dict({
        "project": {"name": "load"},
        "landing": {"path": str(file.parent), "patterns": [glob.escape(file.name)], "recursive": False},
        "source": source,
        "pipeline": {"input": name},
        "tables": {name: {"mode": mode, "primary_key": primary_key or [], "columns": columns, "schema": schema}},
    }, root=folder.resolve(), origin="chute load")
    return Runner(project, url, pipeline_name=f"load:{schema}.{name}", trigger="load").run()


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
    """Column types from the first block of the file (64 MB), with the user's overrides on top."""
    from .project import Source

    options = Source(**source, columns=overrides)
    try:
        first = next(read_csv(_prefix(file), options))
    except (FileError, StopIteration):  # gzip, or a first row longer than the prefix: parse the file
        try:
            first = next(read_csv(str(file), options))
        except FileError as exc:
            raise ConfigError(f"{file.name}: {exc}") from None
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

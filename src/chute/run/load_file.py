"""`chute load FILE --into TABLE`: a project made on the fly for one file.

The file goes through the same runner, loader and ledger as any project (pipeline name
`load:SCHEMA.TABLE`), so loading the same content twice does nothing.
"""

from __future__ import annotations

import glob
import io
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from chute.coltypes import parse_type
from chute.db.postgres import connect, existing_columns
from chute.errors import ConfigError, FileError, options_named
from chute.config.project import project_from_dict
from chute.run.runner import Runner
from chute.ledger.summary import RunSummary
from chute.db.resolve import resolve_database

if TYPE_CHECKING:
    from chute.config.project import Source
    from chute.formats.infer import Schema
    from chute.run.replay import ReplayResult


# The options of `chute load` that stand for chute.toml settings, for messages to name.
OPTIONS = {"encoding": "--encoding", "quote": "--quote", "drift": "--drift", "delimiter": "--delimiter",
           "null_values": "--null", "formats": "--date-format", "select": "--columns", "header": "--no-header"}


def load_file(file: Path, table: str, *, mode: str = "append", primary_key: list[str] | None = None,
              types: tuple[str, ...] = (), delimiter: str | None = None, quote: str | None = None,
              encoding: str | None = None, header: bool | None = None, drift: str = "freeze",
              folder: Path = Path("."), db_url: str | None = None, batch_mb: float = 64, replay: bool = False,
              null_values: list[str] | None = None, date_formats: tuple[str, ...] = (), dry_run: bool = False,
              select: list[str] | None = None, names: str = "normalize",
              folder_chosen: bool = False) -> RunSummary | ReplayResult | dict:
    """Load `file` into `table`, or with `replay` load its quarantined records again. A file
    that failed before is tried again: naming it is asking for it.

    A CSV file's delimiter, quote, header and encoding are sniffed where not given (a given
    delimiter that splits nothing while another would is refused). `null_values` replaces
    DEFAULT_NULLS (the empty field is always NULL); `date_formats` are COL=FORMAT; `select`
    keeps only those columns; `names` "normalize" (snake_case, the file's name kept as a column
    comment) or "keep". Too many columns, too long or duplicate names are refused before
    anything is written. `dry_run` returns the schema (as_dict) without writing anything."""
    with options_named(OPTIONS):
        file = file.resolve()
        if not file.is_file():
            raise ConfigError(f"{file}: no such file")
        schema, name = _table_name(table)
        if mode == "merge" and not primary_key:
            raise ConfigError("--mode merge needs --primary-key COL[,COL]: the columns that identify a row")
        overrides = _parse_overrides(types)
        formats = _parse_formats(date_formats)
        fmt = _format_of(file)
        source: dict = {"format": fmt, "batch_mb": batch_mb}
        given = {k: v for k, v in {"delimiter": delimiter, "quote": quote, "encoding": encoding,
                                   "header": header}.items() if v is not None}
        dialect = _dialect(file, given) if fmt == "csv" else None
        source |= (dialect.as_dict() if dialect else {}) | given
        for key in ("columns", "header_reason"):
            source.pop(key, None)
        if null_values is not None:
            source["null_values"] = null_values
        url = resolve_database(None, db_url, folder, chosen=folder_chosen)
        existing = None
        if not dry_run:
            with connect(url) as conn:
                existing = existing_columns(conn, schema, name)
        shown = None
        comments: dict[str, str] = {}  # table column -> the file's name for it, when normalised
        if existing:
            columns = {c: _known_type(c, t, f"{schema}.{name}") for c, t in existing.items()}
            try:  # the file's names, and its date formats
                found = _infer(file, source, {}, {})
            except ConfigError:  # a file that does not read: the run fails it, in the ledger, with why
                from chute.formats.infer import Schema

                found = Schema([], 0, False, [])
            rename = dict(zip([c.name for c in found.columns], _table_names([c.name for c in found.columns], names)))
            rename = {o: n for o, n in rename.items() if o != n}
            to_file = {v: k for k, v in rename.items()}
            formats = {**{rename.get(c, c): f for c, f in found.formats.items()}, **formats}
            if select:
                source["select"] = [to_file.get(c, c) for c in select]
            unknown = [c for c in formats if c not in columns and c not in to_file.values()]
            if unknown:
                raise ConfigError(f"--date-format: table {schema}.{name} has no column {unknown[0]!r}")
            source["formats"] = {to_file.get(c, c): f for c, f in formats.items() if rename.get(c, c) in columns
                                 and parse_type(columns[rename.get(c, c)]).name in _TEMPORAL}
            read_columns = {to_file.get(c, c): t for c, t in columns.items()}
        elif replay:
            raise ConfigError(f"--replay: there is no table {schema}.{name}; nothing was loaded into it")
        else:
            inferred = _inferred(file, source, overrides, formats, select or [], names, given if dialect else None)
            to_file = {c.name: c.original for c in inferred.columns if c.original}
            if select:
                source["select"] = [c.original or c.name for c in inferred.columns]
            read_columns, source["formats"] = inferred.types, inferred.formats
            columns = {c.name: c.type for c in inferred.columns}
            rename = {o: n for n, o in to_file.items()}
            comments = {n: o for n, o in to_file.items()}
            unknown = [c for c in [*overrides, *formats] if c not in read_columns and c not in columns]
            unknown += [c for c in primary_key or [] if c not in columns and c not in rename]
            if unknown:
                option = "--type" if unknown[0] in overrides else "--date-format" if unknown[0] in formats \
                    else "--primary-key"
                raise ConfigError(f"{option}: {file.name} has no column {unknown[0]!r} "
                                  f"(it has: {', '.join(columns)})")
            shown = inferred.as_dict()
            if dry_run:
                return shown
        primary_key = [rename.get(c, c) for c in primary_key or []]
        if rename:
            source["rename"] = rename
        # The reader parses with the table's types, so a value that does not fit is a reject
        # of its line, and --replay after ALTER TABLE reads it with the new type.
        source["columns"] = read_columns
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
        if comments and summary.rows_loaded:
            _comment(url, schema, name, comments)
        summary.schema = shown or {"columns": [{"name": c, "type": t} for c, t in columns.items()],
                                   "null_values": project.source.nulls(), "existing_table": True}
        if summary.unchanged:  # the new options do not reach records quarantined by the earlier load
            from chute.quality.quarantine import pending_records

            with connect(url) as conn:
                summary.pending_rejects = pending_records(conn, pipeline, file.name)
        return summary


def describe_file(file: Path, names: str = "normalize") -> tuple[dict, Schema]:
    """What `chute load FILE --dry-run` finds, without a database (for `chute init --from`):
    the [source] settings (format; a CSV file's sniffed delimiter, quote, header and encoding)
    and the schema of the table it would create (names normalised, types, date formats, notes)."""
    with options_named(OPTIONS):
        file = file.resolve()
        if not file.is_file():
            raise ConfigError(f"{file}: no such file")
        fmt = _format_of(file)
        source: dict = {"format": fmt}
        dialect = _dialect(file, {}) if fmt == "csv" else None
        if dialect:
            source |= {k: v for k, v in dialect.as_dict().items() if k not in ("columns", "header_reason")}
        inferred = _inferred(file, source, {}, {}, [], names, {} if dialect else None)
        if not inferred.columns:
            raise ConfigError(f"{file.name}: no columns found to describe")
    return source, inferred


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


def _parse_formats(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        column, sep, fmt = item.partition("=")
        if not sep or not column or "%" not in fmt:
            raise ConfigError(f"--date-format {item!r}: write it as COLUMN=FORMAT, e.g. --date-format day=%d/%m/%Y")
        out[column] = fmt
    return out


def _infer(file: Path, source: dict, overrides: dict[str, str], formats: dict[str, str]) -> Schema:
    """The schema from the first block of the file (16 MB), with the user's overrides on top.
    Records that do not parse (ragged, say) do not decide: the run will quarantine them."""
    from chute.config.project import Source

    options = Source(**source)
    try:
        schema = _read_schema(file, options, overrides, formats)
    except FileError as exc:
        raise ConfigError(f"{file.name}: {exc}") from None
    schema.format = options.format
    return schema


def _read_schema(file: Path, options: Source, overrides: dict[str, str], formats: dict[str, str]) -> Schema:
    from chute.formats.infer import infer_frame, infer_schema
    from chute.formats.reader import read_records
    from chute.formats.text import ROW_COLUMN

    if options.format == "csv":
        head, complete = _prefix(file)
        return infer_schema(head, options.model_copy(update={"compression": "none"}), overrides, formats,
                            complete)[0]
    if options.format == "jsonl":
        head, complete = _prefix(file)
        rows = read_records(head, options.model_copy(update={"compression": "none"}), 1 << 30)[0]
        return infer_frame(rows.drop(ROW_COLUMN), overrides, formats, complete)
    # A JSON document, a workbook, a Parquet file: read whole (their structure spans the file)
    rows = read_records(str(file), options, 1 << 30)[0].drop(ROW_COLUMN)
    if options.format != "excel":
        return infer_frame(rows, overrides, formats, True)
    # Every cell of a sheet is text: inferred as CSV text is, null markers and dates included
    text = pa.py_buffer(rows.write_csv().encode())
    as_csv = options.model_copy(update={"format": "csv", "compression": "none", "encoding": "utf-8",
                                        "delimiter": ",", "quote": '"', "header": True})
    return infer_schema(text, as_csv, overrides, formats, True)[0]


_TEMPORAL = ("date", "timestamp", "timestamptz", "time")


def _inferred(file: Path, source: dict, overrides: dict[str, str], formats: dict[str, str], select: list[str],
              names: str, given: dict | None) -> Schema:
    """The schema of a new table: inferred, only the --columns kept, names normalised and
    checked. --type, --date-format and --columns may name a column by the file's name or the
    table's (normalised) one."""
    inferred = _infer(file, source, overrides, formats)
    by_table = dict(zip(_table_names([c.name for c in inferred.columns], names), [c.name for c in inferred.columns]))
    if any(k not in by_table.values() and k in by_table for k in [*overrides, *formats, *select]):
        overrides = {by_table.get(k, k): v for k, v in overrides.items()}
        formats = {by_table.get(k, k): v for k, v in formats.items()}
        select = [by_table.get(k, k) for k in select]
        inferred = _infer(file, source, overrides, formats)
    if given is not None:
        inferred.dialect = {k: source[k] for k in ("delimiter", "quote", "header", "encoding")} | {
            "given": sorted(given)}
    if inferred.complete and not inferred.rows and {c.name for c in inferred.columns} - set(overrides):
        raise ConfigError(f"{file.name}: the file has a header but no data rows, so the columns' types cannot be "
                          "inferred; load a file with rows first (an existing table takes a file with no rows), or "
                          "give every column's type with --type COL=TYPE")
    _check_columns(file, inferred, select, names)
    return inferred


def _table_names(names: list[str], how: str) -> list[str]:
    from chute.formats.names import normalize_names

    return normalize_names(names) if how == "normalize" else names


def _comment(url: str, schema: str, table: str, comments: dict[str, str]) -> None:
    """COMMENT ON COLUMN: the file's name of each column chute renamed (psql's \\d+ shows it)."""
    from psycopg import sql

    with connect(url) as conn:
        for column, original in comments.items():
            conn.execute(sql.SQL("COMMENT ON COLUMN {}.{}.{} IS {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column), sql.Literal(original)))
        conn.commit()


def _dialect(file: Path, given: dict):
    """The CSV dialect from the file's first 64 KB (decompressed), what is given kept."""
    from chute.formats.compress import decompress_head
    from chute.formats.dialect import sniff_dialect

    with file.open("rb") as f:
        head = decompress_head(f.read(1 << 20), 1 << 16)
    try:
        return sniff_dialect(head, given.get("delimiter"), given.get("quote"), given.get("encoding"),
                             given.get("header"), whole=len(head) < 1 << 16)
    except FileError as exc:
        raise ConfigError(f"{file.name}: {exc}") from None


def _check_columns(file: Path, schema: Schema, select: list[str], names: str) -> None:
    """Only the --columns kept; their names normalised (names = "normalize"); ConfigError, before
    anything is written, for names or a count PostgreSQL cannot take."""
    from chute.formats.names import check_names

    if select:
        have = {c.name for c in schema.columns}
        unknown = [c for c in select if c not in have]
        if unknown:
            raise ConfigError(f"--columns: {file.name} has no column {unknown[0]!r}")
        wanted = set(select)
        schema.columns = [c for c in schema.columns if c.name in wanted]
    originals = [c.name for c in schema.columns]
    table = _table_names(originals, names)
    problem = check_names(table, originals, keep=names == "keep")
    if problem:
        raise ConfigError(f"{file.name}: {problem}; nothing was loaded")
    for info, new in zip(schema.columns, table):
        if new != info.name:
            info.original, info.name = info.name, new


def _format_of(file: Path) -> str:
    """csv, json, jsonl, parquet or excel, from the file's first bytes (formats/detect.py)."""
    from chute.formats.detect import detect_format

    with file.open("rb") as f:
        head = f.read(1 << 16)
    try:
        return detect_format(head, file.name)
    except FileError as exc:
        raise ConfigError(f"{file.name}: {exc}") from None


def _prefix(file: Path, size: int = 16 << 20) -> tuple[pa.Buffer, bool]:
    """The file's first lines (decompressed), up to `size` bytes, and whether that is the whole
    file. pyarrow's reader parses far ahead of what is asked for, so inferring from the path
    would parse most of a big file. A compressed file read whole must be whole: a cut or
    corrupt one fails here, before a table is created."""
    from chute.formats.compress import decompress_head, decompressed, detect_compression

    with file.open("rb") as f:
        head = f.read(size)
    complete = len(head) < size
    kind = detect_compression(head[:6])
    if kind and complete:
        head = decompressed(io.BytesIO(head), kind).read(size + 1)
        complete = len(head) <= size
    elif kind:
        head = decompress_head(head, size)
    if not complete:  # whole lines only (a slice of the buffer, not a copy)
        return pa.py_buffer(head).slice(0, head.rfind(b"\n") + 1), complete
    return pa.py_buffer(head[:size]), complete


def _known_type(column: str, sql_type: str, table: str) -> str:
    try:
        return parse_type(sql_type).name
    except ConfigError:
        raise ConfigError(f"table {table} column {column} has type {sql_type}, which chute cannot load yet") from None

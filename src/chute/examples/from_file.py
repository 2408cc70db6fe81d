"""`chute init DIR --from FILE`: a project that loads files like FILE, its chute.toml written from
what `chute load FILE --dry-run` finds (run/load_file.py: describe_file), and FILE copied into its
landing zone.

The chute.toml says everything that was detected, so that it can be read and edited: the landing
pattern (from the file's extension), the [source] format, dialect and null markers, the date
formats and renames by the file's column names, and one [tables.NAME] with every column's type.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from chute.config.project import CONFIG_NAME, load_project
from chute.errors import ConfigError
from chute.formats.names import snake_case
from chute.run.load_file import describe_file

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zstd")


def create_from_file(folder: Path, file: Path, table: str | None = None, names: str = "normalize") -> dict:
    """The project in `folder` (new or empty): chute.toml and landing/FILE. Returns what was made."""
    file = Path(file)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} exists and is not empty; choose a new folder")
    source, schema = describe_file(file, names)
    table = table or snake_case(_stem(file.name)) or "rows"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
        raise ConfigError(f"--table {table!r}: a table name is letters, digits and _ (not starting with a digit)")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-") or "project"
    text = render(name, file.name, table, source, schema)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "landing").mkdir()
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    shutil.copy2(file, folder / "landing" / file.name)
    load_project(folder)  # what was written must read back: a bug here, not a user's mistake
    return {"folder": str(folder), "from": str(file), "table": table, "created": [CONFIG_NAME, f"landing/{file.name}"],
            "columns": {c.name: c.type for c in schema.columns}, "next": f"chute run --project {folder}"}


def _stem(name: str) -> str:
    """penguins-raw.csv.gz -> penguins-raw."""
    base = name
    for suffix in COMPRESSED:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rsplit(".", 1)[0] if "." in base else base


def pattern_of(name: str) -> str:
    """The landing pattern for files like `name`: its extension, with its compression's
    (`*.csv`, `*.csv.gz`, `*.json`); the name itself when it has none."""
    lower = name.lower()
    compressed = next((s for s in COMPRESSED if lower.endswith(s)), "")
    base = name[: len(name) - len(compressed)]
    if "." not in base.lstrip("."):
        return name
    return "*." + base.rsplit(".", 1)[1] + name[len(base):]


def render(project: str, file_name: str, table: str, source: dict, schema) -> str:
    """The chute.toml text."""
    lines = [f"# Written by `chute init --from {file_name}`: a project that loads files like it into table {table}.",
             "# Every setting below was detected in that file; edit what it got wrong (docs/configuration.md).",
             "", "[project]", f"name = {_s(project)}", "",
             "[landing]", 'path = "landing"', f"patterns = [{_s(pattern_of(file_name))}]", "",
             "[source]", f"format = {_s(source['format'])}"]
    if schema.dialect:
        for key in ("delimiter", "quote", "encoding"):
            lines.append(f"{key} = {_s(schema.dialect[key])}")
        lines.append(f"header = {'true' if schema.dialect['header'] else 'false'}")
    if source["format"] in ("csv", "excel"):
        lines.append(f"null_values = [{', '.join(_s(v) for v in schema.null_values)}]"
                     "   # read as NULL where unquoted (an empty field always is)")
    text_kept = [c for c in schema.columns if c.type == "text" and "leading zeros" in c.note]
    # A CSV reader parses a [source.formats] column by itself; the other readers apply a format
    # to a column whose type [source.columns] declares.
    dated = [c for c in schema.columns if c.format and source["format"] != "csv"]
    formats = schema.formats
    renames = {c.original: c.name for c in schema.columns if c.original}
    if formats:
        lines += ["", "[source.formats]                 # date/time formats, by the file's column names"]
        lines += [f"{_k(col)} = {_s(fmt)}" for col, fmt in formats.items()]
    if text_kept or dated:
        lines += ["", "[source.columns]                 # read as these types, by the file's column names"]
        lines += [f"{_k(c.original or c.name)} = \"text\"    # leading zeros: codes, not numbers" for c in text_kept]
        lines += [f"{_k(c.original or c.name)} = {_s(c.type)}" for c in dated]
    if renames:
        lines += ["", "[source.rename]                  # the file's column names -> the table's (snake_case)"]
        lines += [f"{_k(o)} = {_s(n)}" for o, n in renames.items()]
    lines += ["", "[pipeline]", f"input = {_s(table)}", "", f"[tables.{table}]",
              'mode = "append"                  # or "merge" with primary_key = ["..."], or "replace"', "",
              f"[tables.{table}.columns]" + " " * max(1, 33 - len(f"[tables.{table}.columns]"))
              + f"# as inferred from {'the whole file' if schema.complete else f'its first {schema.rows:,} rows'}"]
    for c in schema.columns:
        nulls = f"{c.nulls:,} NULL in {'the file' if schema.complete else 'the sample'}" if c.nulls else ""
        note = "; ".join(n for n in (" ".join(c.note.split()), nulls) if n)
        line = f"{_k(c.name)} = {_s(c.type)}"
        lines.append(line + (" " * max(1, 33 - len(line)) + "# " + note if note else ""))
    return "\n".join(lines) + "\n"


def _s(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _k(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _s(key)

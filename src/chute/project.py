"""chute.toml -> a typed, validated Project.

Every error names the file, the key and what was expected, so a user can fix it without
reading code. Paths in the file are relative to the project folder.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .coltypes import ColumnType, parse_type
from .errors import ConfigError
from .quality.contracts import Contract

CONFIG_NAME = "chute.toml"


def _check_types(columns: dict[str, str]) -> dict[str, str]:
    for name, text in columns.items():
        try:
            parse_type(text)
        except ConfigError as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
    return columns


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectInfo(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


class Landing(_Strict):
    path: str = "landing"
    patterns: list[str] = ["*.csv"]
    recursive: bool = True


class Source(_Strict):
    """How the landing files are read."""

    format: Literal["csv"] = "csv"
    header: bool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    compression: Literal["auto", "none", "gzip"] = "auto"
    null_values: list[str] = [""]
    # Declared types by column name. With header = false they also name the columns in order;
    # with neither, columns are named f0, f1, ...
    columns: dict[str, str] = {}
    # Column holding each row's file name (relative to the landing zone), for nodes and lineage.
    file_column: str = "source_file"
    # Input bytes per batch: small files are grouped up to this size, big ones are split.
    batch_mb: float = Field(64, gt=0)
    pii_columns: list[str] = []

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_types(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    def column_types(self) -> dict[str, ColumnType]:
        return {name: parse_type(text) for name, text in self.columns.items()}


class PipelineConfig(_Strict):
    module: str | None = None  # a .py file in the project; None means the input goes straight to its table
    input: str = "rows"  # the dataset name the landing files feed


class Table(_Strict):
    mode: Literal["append", "replace", "merge"] = "append"
    primary_key: list[str] = []
    columns: dict[str, str]
    schema_: str = Field("public", alias="schema")
    export: str | None = None  # CSV path (relative to the project) rewritten from the table after each load
    contract: Contract | None = None  # checks, drift policy and reject thresholds (quality/contracts.py)

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("declare at least one column")
        return _check_types(value)

    @model_validator(mode="after")
    def _key_is_declared(self) -> "Table":
        missing = [c for c in self.primary_key if c not in self.columns]
        if missing:
            raise ValueError(f"primary_key names undeclared columns: {', '.join(missing)}")
        if self.mode == "merge" and not self.primary_key:
            raise ValueError("mode = 'merge' needs a primary_key")
        return self

    def column_types(self) -> dict[str, ColumnType]:
        return {name: parse_type(text) for name, text in self.columns.items()}


class Database(_Strict):
    url: str | None = None  # a URL, or env:VAR to read it from the environment


class Project(_Strict):
    """A loaded project. `root` is the folder holding chute.toml."""

    project: ProjectInfo
    landing: Landing = Landing()
    source: Source = Source()
    pipeline: PipelineConfig = PipelineConfig()
    params: dict[str, Any] = {}
    references: dict[str, str] = {}  # name -> file in the project; nodes receive a Path
    tables: dict[str, Table] = {}
    database: Database = Database()
    root: Path = Path(".")

    @property
    def name(self) -> str:
        return self.project.name

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def landing_path(self) -> Path:
        return self.path(self.landing.path)

    @property
    def state_dir(self) -> Path:
        """Where chute keeps local state (the embedded database) for this project."""
        return self.root / ".chute"

    def configured_database_url(self) -> str | None:
        url = self.database.url
        if url and url.startswith("env:"):
            var = url[4:]
            value = os.environ.get(var)
            if not value:
                raise ConfigError(f"{CONFIG_NAME}: [database] url = 'env:{var}' but ${var} is not set")
            return value
        return url


def load_project(folder: str | os.PathLike[str]) -> Project:
    root = Path(folder).resolve()
    config = root / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(f"no {CONFIG_NAME} in {root} (create a project with `chute init`)")
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{config}: not UTF-8 text") from None
    return project_from_dict(data, root, origin=str(config))


def project_from_dict(data: dict[str, Any], root: Path, origin: str = CONFIG_NAME) -> Project:
    try:
        return Project.model_validate({**data, "root": root})
    except ValidationError as exc:
        raise ConfigError(f"{origin}: invalid configuration\n{_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)

"""`[extract.NAME]` tables of chute.toml: what to pull from where, into which landing folder.

Light imports only (no database drivers, no HTTP client): chute.toml is validated by every
command, and a project without extractions must not pay for them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# Partition folders are named after the extraction's output: letters, digits, _ . - and no
# leading dot (hidden folders are ignored by the landing zone; '..' would leave it).
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
_FOLDER = rf"^{_SEGMENT}(/{_SEGMENT})*$"


class ExtractBase(BaseModel):
    """Keys every kind of extraction has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    into: str | None = Field(None, pattern=_FOLDER)  # folder under the landing zone; default: the extraction's name
    format: Literal["parquet", "csv", "jsonl"] | None = None  # default: the kind's (see default_format)
    batch_size: int = Field(50_000, ge=1, le=10_000_000)  # rows per part file
    schedule: str | None = None  # cron: `chute watch` runs this extraction on it

    default_format: ClassVar[str] = "parquet"  # overridden per kind; not a key users set

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(f"not a cron expression: {value!r}")
        return value

    def folder(self, name: str) -> str:
        return self.into or name

    @property
    def file_format(self) -> str:
        return self.format or self.default_format


class DatabaseExtract(ExtractBase):
    """A table or a query of another database, paged by key (see docs/sources.md)."""

    kind: Literal["database"]
    default_format: ClassVar[str] = "parquet"
    # A SQLAlchemy URL (postgresql://, sqlite:///path, mysql+pymysql://, snowflake://, ...) or
    # env:VAR to read it from the environment (a URL holding a password is a secret), or
    # warehouse:DBNAME for a database on the same PostgreSQL server as the warehouse.
    url: str = Field(min_length=1)
    table: str | None = None  # [schema.]table
    query: str | None = None  # a SELECT; its output columns include the key (and the cursor)
    # Columns whose values identify a row: pages are ordered and resumed by (cursor, key).
    key: list[str] = Field(min_length=1)
    # A column that only grows (an updated_at timestamp or an increasing id): each run takes the
    # rows past the watermark left by the last one. Without a cursor every run takes the whole table.
    cursor: str | None = None
    columns: list[str] = []  # only these columns of a table (default: all)
    # Naive timestamps of the source are in this zone; every timestamp is written in UTC.
    timezone: str = "UTC"

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as 'UTC' or 'Europe/Paris')") from None
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> "DatabaseExtract":
        if bool(self.table) == bool(self.query):
            raise ValueError("set exactly one of table or query")
        if self.query and self.columns:
            raise ValueError("columns applies to a table; select the columns in the query instead")
        if self.file_format == "jsonl":
            raise ValueError("format = 'jsonl' is not available for a database extraction (parquet or csv)")
        return self


class HttpExtract(ExtractBase):
    """A paginated JSON API (issue7-chain adds its keys)."""

    kind: Literal["http"]
    default_format: ClassVar[str] = "jsonl"
    url: str = Field(min_length=1)


Extract = Annotated[DatabaseExtract | HttpExtract, Field(discriminator="kind")]


def _fill_into(extracts: dict[str, Any]) -> dict[str, Any]:
    """Every extraction knows its folder: `into`, or its own name."""
    for name in extracts:
        if not re.fullmatch(_SEGMENT, name):
            raise ValueError(f"extraction name {name!r}: use letters, digits, _ . - (it names a folder)")
    return {name: spec if spec.into else spec.model_copy(update={"into": name}) for name, spec in extracts.items()}


# The type of Project.extract: name -> extraction, each with `into` filled in.
Extracts = Annotated[dict[str, Extract], AfterValidator(_fill_into)]

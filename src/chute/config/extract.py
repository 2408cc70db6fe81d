"""`[extract.NAME]` tables of chute.toml: what to pull from where, into which landing folder.

Light imports only (no database drivers, no HTTP client): chute.toml is validated by every
command, and a project without extractions must not pay for them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import StrictBool, AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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


class HttpPagination(BaseModel):
    """How an API hands out its pages (see docs/chains.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["none", "cursor", "page", "link"] = "none"
    cursor_param: str = "cursor"  # cursor: the query parameter carrying the cursor back
    cursor_path: str = "next_cursor"  # cursor: dotted path of the next cursor in the body
    page_param: str = "page"  # page: the query parameter of the page number
    start_page: int = 1
    page_size_param: str | None = None  # a query parameter asking for page_size records a page
    page_size: int | None = Field(None, ge=1)


class HttpExtract(ExtractBase):
    """A paginated JSON API: every page's records into part files (see docs/chains.md)."""

    kind: Literal["http"]
    default_format: ClassVar[str] = "jsonl"
    # May hold {name} placeholders, filled from each for_each row (URL-quoted).
    url: str = Field(min_length=1, pattern=r"^(https?://|\{)")  # http(s)://..., or {param}/... from [params]
    params: dict[str, str | int | float | bool] = {}  # query parameters; string values may hold {name} too
    records: str = ""  # dotted path to the list of records in the body; "" = the body is the list
    pagination: HttpPagination = HttpPagination()
    headers: dict[str, str] = {}  # sent as they are: never put a secret here
    headers_env: dict[str, str] = {}  # header -> name of the environment variable holding its value
    rate_limit: float | None = Field(None, gt=0)  # requests per second at most
    timeout: float = Field(30, gt=0)  # seconds per request
    attempts: int = Field(5, ge=1, le=20)  # tries of one request hit by 5xx/429/timeouts, the first included
    retry_initial: float = Field(0.5, gt=0)  # seconds before the first retry; doubles, with jitter
    retry_max: float = Field(30, gt=0)
    max_retry_after: float = Field(300, ge=0)  # a 429 asking to wait longer fails the extraction
    # Incremental: send the watermark as this query parameter (e.g. updated_since) and keep the
    # greatest value of cursor_field among the records as the next watermark (with for_each, one
    # watermark per row: each key resumes where it ended).
    cursor_param: str | None = None
    cursor_field: str | None = None
    start: str | None = None  # cursor_param's value on the first run (default: not sent)
    until_param: str | None = None  # `chute extract --until`: sent as this query parameter
    # Fan-out: one request sequence per row. "message": the keys of the chain message being
    # consumed ([follow], chute.chain); for_each_query: the rows of a query on the target database.
    for_each: Literal["message"] | None = None
    for_each_query: str | None = None
    add_keys: StrictBool = True  # copy each row's values into its records (when they lack the field)

    @model_validator(mode="after")
    def _consistent(self) -> "HttpExtract":
        if self.for_each and self.for_each_query:
            raise ValueError("set for_each = 'message' or for_each_query, not both")
        if bool(self.cursor_param) != bool(self.cursor_field):
            raise ValueError("an incremental extraction needs both cursor_param and cursor_field")
        return self


Extract = Annotated[DatabaseExtract | HttpExtract, Field(discriminator="kind")]


def _fill_into(extracts: dict[str, Any]) -> dict[str, Any]:
    """Every extraction knows its folder: `into`, or its own name."""
    for name in extracts:
        if not re.fullmatch(_SEGMENT, name):
            raise ValueError(f"extraction name {name!r}: use letters, digits, _ . - (it names a folder)")
    return {name: spec if spec.into else spec.model_copy(update={"into": name}) for name, spec in extracts.items()}


# The type of Project.extract: name -> extraction, each with `into` filled in.
Extracts = Annotated[dict[str, Extract], AfterValidator(_fill_into)]

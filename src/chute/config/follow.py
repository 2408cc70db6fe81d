"""`[follow]` of chute.toml: this project is a stage that follows another one (see docs/chains.md).

Light imports only: chute.toml is validated by every command.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Follow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")  # the upstream pipeline, in the same database
    # "rows": a message carries the keys of rows the upstream loaded into `table`;
    # "files": a message carries the names of landing files the upstream loaded.
    on: Literal["rows", "files"] = "rows"
    table: str | None = None  # rows: the upstream table ([schema.]table)
    key: list[str] = []  # rows: the columns a message carries (they fill the extraction's {placeholders})
    keys_per_message: int = Field(1, ge=1, le=100_000)  # rows (or file names) per message
    # The extractions run for each message (their for_each = "message"); default: all of them.
    extract: list[str] = []
    max_attempts: int | None = Field(None, ge=1)  # tries of a message before it is a dead letter; default [watch] max_attempts
    messages_per_run: int = Field(100, ge=1)  # messages one run claims at most
    poll: float = Field(1.0, gt=0)  # `chute watch`: seconds between looks at the queue

    @field_validator("key", "extract", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _rows_need_table_and_key(self) -> "Follow":
        if self.on == "rows" and not (self.table and self.key):
            raise ValueError("on = 'rows' needs table (the upstream table) and key (the columns a message carries)")
        return self

    def source(self) -> tuple[str, str]:
        schema, _, table = (self.table or "").rpartition(".")
        return schema or "public", table

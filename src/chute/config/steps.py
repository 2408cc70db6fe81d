"""The `[[pipeline.steps]]` models of chute.toml: built-in transforms declared, not coded.
transforms/steps.py turns them into pipeline nodes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

import polars as pl
from pydantic import StrictBool, BaseModel, ConfigDict, Field, field_validator

from chute.config.checks import check_types

DEFAULT_KEY_ENV = "CHUTE_PII_KEY"  # the variable holding the key of `hash` (transforms/pii.py)
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str | None = Field(None, pattern=_NAME)
    output: str | None = Field(None, pattern=_NAME)


class DropStep(StepBase):
    op: Literal["drop"]
    columns: list[str] = Field(min_length=1)
    strict: StrictBool = False  # a missing column is an error


class HashStep(StepBase):
    op: Literal["hash"]
    columns: list[str] = Field(min_length=1)
    key_env: str = Field(DEFAULT_KEY_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the NAME of the variable
    length: int = Field(64, ge=8, le=64)


class MaskStep(StepBase):
    op: Literal["mask"]
    columns: list[str] = Field(min_length=1)
    keep_last: int = Field(4, ge=0)
    char: str = Field("*", min_length=1, max_length=1)


class ExplodeStep(StepBase):
    op: Literal["explode"]
    column: str
    separator: str = Field(",", min_length=1)
    position: str | None = None
    strip: StrictBool = True


class ExtractStep(StepBase):
    op: Literal["extract"]
    column: str
    pattern: str
    keep: StrictBool = False
    strict: StrictBool = True

    @field_validator("pattern")
    @classmethod
    def _named_groups(cls, value: str) -> str:
        if "(?P<" not in value:
            raise ValueError("the pattern needs named groups like (?P<size>\\w+)")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class DedupStep(StepBase):
    op: Literal["dedup"]
    key: list[str] = Field(min_length=1)
    keep: Literal["first", "last", "max", "min"] = "last"
    by: str | None = None


class RenameStep(StepBase):
    op: Literal["rename"]
    columns: dict[str, str] = Field(min_length=1)


class CastStep(StepBase):
    op: Literal["cast"]
    columns: dict[str, str] = Field(min_length=1)
    strict: StrictBool = True

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        return check_types(value)


class DeriveStep(StepBase):
    op: Literal["derive"]
    columns: dict[str, str] = Field(min_length=1)  # name = SQL expression parsed by polars

    @field_validator("columns")
    @classmethod
    def _parses(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            try:
                pl.sql_expr(text)
            except Exception as exc:
                raise ValueError(f"column {name!r}: cannot parse {text!r}: {str(exc).splitlines()[0]}") from None
        return value


class FilterStep(StepBase):
    op: Literal["filter"]
    where: str


class SplitStep(StepBase):
    op: Literal["split"]
    natural_key: list[str] = Field(min_length=1)
    key: str = Field(pattern=_NAME)
    dimension: str = Field(pattern=_NAME)  # the dataset (usually a table) of the dimension rows
    attributes: list[str] = []
    namespace: str = ""
    keep_in_fact: list[str] = []


Step = Annotated[Union[DropStep, HashStep, MaskStep, ExplodeStep, ExtractStep, DedupStep, RenameStep, CastStep,
                       DeriveStep, FilterStep, SplitStep], Field(discriminator="op")]

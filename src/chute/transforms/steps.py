"""Declarative steps: `[[pipeline.steps]]` in chute.toml -> pipeline nodes.

Each step names its operation (`op`) and reads one dataset (`input`, by default the output
of the step before it, or the landing input for the first step). It writes `output` (by
default a name of its own; name it after a table to load it). `split` also writes the
dimension dataset named by `dimension`.

    [[pipeline.steps]]
    op = "drop"
    columns = ["customer_name", "card_number"]

    [[pipeline.steps]]
    op = "split"
    natural_key = ["branch"]
    key = "branch_id"
    dimension = "branches"
    output = "orders"
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chute.coltypes import parse_type
from chute.errors import ConfigError
from chute.pipeline.graph import Node
from chute.transforms import columns as _columns
from chute.transforms.dedup import dedup as _dedup_rows
from chute.transforms import explode as _explode
from chute.transforms import normalize as _normalize
from chute.transforms import pii as _pii

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str | None = Field(None, pattern=_NAME)
    output: str | None = Field(None, pattern=_NAME)

    def apply(self, frame: pl.DataFrame):  # pragma: no cover - each step defines it
        raise NotImplementedError


class DropStep(_Step):
    op: Literal["drop"]
    columns: list[str] = Field(min_length=1)
    strict: bool = False  # a missing column is an error

    def apply(self, frame):
        return _pii.drop_columns(frame, self.columns, strict=self.strict)


class HashStep(_Step):
    op: Literal["hash"]
    columns: list[str] = Field(min_length=1)
    key_env: str = Field(_pii.DEFAULT_KEY_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the NAME of the variable
    length: int = Field(64, ge=8, le=64)

    def apply(self, frame):
        return _pii.hash_columns(frame, self.columns, key_env=self.key_env, length=self.length)


class MaskStep(_Step):
    op: Literal["mask"]
    columns: list[str] = Field(min_length=1)
    keep_last: int = Field(4, ge=0)
    char: str = Field("*", min_length=1, max_length=1)

    def apply(self, frame):
        return _pii.mask_columns(frame, self.columns, keep_last=self.keep_last, char=self.char)


class ExplodeStep(_Step):
    op: Literal["explode"]
    column: str
    separator: str = Field(",", min_length=1)
    position: str | None = None
    strip: bool = True

    def apply(self, frame):
        return _explode.explode_list(frame, self.column, self.separator, position=self.position, strip=self.strip)


class ExtractStep(_Step):
    op: Literal["extract"]
    column: str
    pattern: str
    keep: bool = False
    strict: bool = True

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

    def apply(self, frame):
        return _explode.extract(frame, self.column, self.pattern, keep=self.keep, strict=self.strict)


class DedupStep(_Step):
    op: Literal["dedup"]
    key: list[str] = Field(min_length=1)
    keep: Literal["first", "last", "max", "min"] = "last"
    by: str | None = None

    def apply(self, frame):
        return _dedup_rows(frame, self.key, self.keep, self.by)


class RenameStep(_Step):
    op: Literal["rename"]
    columns: dict[str, str] = Field(min_length=1)

    def apply(self, frame):
        return _columns.rename(frame, self.columns)


class CastStep(_Step):
    op: Literal["cast"]
    columns: dict[str, str] = Field(min_length=1)
    strict: bool = True

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            try:
                parse_type(text)
            except ConfigError as exc:
                raise ValueError(f"column {name!r}: {exc}") from None
        return value

    def apply(self, frame):
        return _columns.cast(frame, self.columns, strict=self.strict)


class DeriveStep(_Step):
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

    def apply(self, frame):
        return _columns.derive(frame, self.columns)


class FilterStep(_Step):
    op: Literal["filter"]
    where: str

    def apply(self, frame):
        return _columns.where(frame, self.where)


class SplitStep(_Step):
    op: Literal["split"]
    natural_key: list[str] = Field(min_length=1)
    key: str = Field(pattern=_NAME)
    dimension: str = Field(pattern=_NAME)  # the dataset (usually a table) of the dimension rows
    attributes: list[str] = []
    namespace: str = ""
    keep_in_fact: list[str] = []

    def apply(self, frame):
        return _normalize.split_dimension(frame, self.natural_key, self.key, attributes=self.attributes,
                                          namespace=self.namespace, keep_in_fact=self.keep_in_fact)


Step = Annotated[Union[DropStep, HashStep, MaskStep, ExplodeStep, ExtractStep, DedupStep, RenameStep, CastStep,
                       DeriveStep, FilterStep, SplitStep], Field(discriminator="op")]


def nodes_from_steps(steps: list[_Step], source: str) -> list[Node]:
    """Chain the steps into nodes: each reads the previous step's output unless told otherwise."""
    nodes = []
    previous = source
    for i, step in enumerate(steps, 1):
        name = f"step{i}_{step.op}"  # type: ignore[attr-defined]
        input_ = step.input or previous
        output = step.output or f"_{name}"
        outputs = (step.dimension, output) if isinstance(step, SplitStep) else (output,)
        nodes.append(Node(_frame_step(step), name, (input_,), outputs))
        previous = output
    return nodes


def _frame_step(step: _Step):
    def run(frame):
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        return step.apply(frame)
    run.__name__ = f"step_{step.op}"  # type: ignore[attr-defined]
    return run

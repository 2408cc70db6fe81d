"""A small writer of Terraform's HCL from Python values, in `terraform fmt`'s layout.

Values: str is a literal string (escaped), Expr is an expression written as-is, bool,
int, float, list, dict (an object). A Block holds attributes and nested blocks. Layout
follows hclwrite: two-space indents; the `=` of consecutive one-line attributes aligned;
a multi-line attribute or a nested block stands apart, between blank lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Expr:
    text: str


@dataclass
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: list[Any] = field(default_factory=list)  # (name, value) pairs, Blocks, or Comment
    comments: tuple[str, ...] = ()  # lines written first inside the block (e.g. checkov skips)

    def attr(self, name: str, value: Any) -> "Block":
        self.body.append((name, value))
        return self

    def add(self, block: "Block") -> "Block":
        self.body.append(block)
        return block


def string(text: str) -> str:
    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    return '"' + escaped.replace("${", "$${").replace("%{", "%%{") + '"'


def template(text: str) -> Expr:
    """A string with ${...} interpolations kept (the rest escaped as usual)."""
    return Expr('"' + json.dumps(text, ensure_ascii=False)[1:-1] + '"')


def _key(name: str) -> str:
    return name if _IDENT.match(name) else string(name)


def value(v: Any, indent: int) -> str:
    pad = "  " * indent
    if isinstance(v, Expr):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        items = [value(x, indent + 1) for x in v]
        one_line = "[" + ", ".join(items) + "]"
        if "\n" not in one_line and len(one_line) <= 100:
            return one_line
        return "[\n" + "".join(f"{pad}  {x},\n" for x in items) + f"{pad}]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + _attributes([(_key(k), x) for k, x in v.items()], indent + 1) + f"{pad}}}"
    raise TypeError(f"no HCL for {type(v).__name__}")


def _attributes(pairs: list[tuple[str, Any]], indent: int) -> str:
    """Attributes in groups of one-line ones (aligned); multi-line ones alone, between blank lines."""
    pad = "  " * indent
    rendered = [(k, value(v, indent)) for k, v in pairs]
    out: list[str] = []
    group: list[tuple[str, str]] = []

    def flush() -> None:
        if group:
            width = max(len(k) for k, _ in group)
            out.extend(f"{pad}{k.ljust(width)} = {v}\n" for k, v in group)
            group.clear()

    for k, v in rendered:
        if "\n" in v:
            flush()
            if out and out[-1] != "\n":
                out.append("\n")
            out.append(f"{pad}{k} = {v}\n")
            out.append("\n")
        else:
            group.append((k, v))
    flush()
    while out and out[-1] == "\n":
        out.pop()
    return "".join(out)


def block(b: Block, indent: int = 0) -> str:
    pad = "  " * indent
    head = " ".join([b.type, *(string(label) for label in b.labels)])
    parts: list[str] = []
    for line in b.comments:
        parts.append(f"{pad}  #{line}\n")
    pairs: list[tuple[str, Any]] = []

    def flush() -> None:
        if pairs:
            if parts and parts[-1] != "\n" and not parts[-1].lstrip().startswith("#"):
                parts.append("\n")
            parts.append(_attributes(list(pairs), indent + 1))
            pairs.clear()

    for item in b.body:
        if isinstance(item, Block):
            flush()
            if parts and parts[-1] != "\n" and not parts[-1].lstrip().startswith("#"):
                parts.append("\n")
            parts.append(block(item, indent + 1))
        else:
            pairs.append(item)
    flush()
    return f"{pad}{head} {{\n" + "".join(parts) + f"{pad}}}\n"


def document(blocks: list[Block], header: str = "") -> str:
    text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    if text:
        text += "\n"
    return text + "\n".join(block(b) for b in blocks)

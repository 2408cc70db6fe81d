"""Jinja2 filters: how numbers, sizes, durations and times read on the pages."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment


def number(value: Any) -> str:
    """12345 -> 12,345; a float to three decimals at most (-4.811999999999983 -> -4.812)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if value.is_integer():
            return f"{value:,.0f}"
        if abs(value) < 0.01:
            return f"{value:.2g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def compact(value: float | None) -> str:
    """1234567 -> 1.2M, for tight places (axes, cards); exact numbers stay in tooltips and tables."""
    if value is None:
        return "–"
    for step, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= step:
            return f"{value / step:.1f}".rstrip("0").rstrip(".") + unit
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.2g}"


def cell(value: Any) -> str:
    """A value of a table's row as a person reads it: floats to six decimals at most, without
    binary noise (-4.811999999999983 -> -4.812), timestamps to the second, NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or (value and abs(value) < 1e-4):
            return f"{value:.6g}"
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def span(seconds: float | None) -> str:
    """An age or an interval in words: 45 s, 12 min, 3 h, 2 d 4 h."""
    if seconds is None:
        return "–"
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60:02d} min" if hours < 10 and rest >= 60 else f"{hours} h"
    days, rest = divmod(int(seconds), 86400)
    return f"{days} d {rest // 3600} h" if rest >= 3600 else f"{days} d"


def size(value: int | None) -> str:
    if value is None:
        return "–"
    n = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{value} B"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def when(value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_hash(value: str | None) -> str:
    return (value or "")[:12]


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def query(params: dict[str, Any], **changes: Any) -> str:
    """The current filters with some changed, as a query string (empty values dropped)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", 0)})


def install_filters(env: Environment) -> None:
    env.filters.update(number=number, size=size, duration=duration, when=when, short_hash=short_hash,
                       pretty=pretty, compact=compact, cell=cell, span=span)
    env.globals.update(query=query)

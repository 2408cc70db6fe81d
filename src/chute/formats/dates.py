"""Date, timestamp and time columns: their format detected from their values, and parsed with it.

Candidates come from each value's shape (a regex), not from trying every format: ISO
(`%Y-%m-%d`), `%Y/%m/%d`, `%Y.%m.%d`, `d?m?Y` with `/ - .` and 2- or 4-digit years, month names
(`Jan 1 2000`, `January 1, 2000`, `1 January 2000`, `01-Jan-2000`), then an optional time after
`T` or a space (`%H:%M[:%S[%.f]]`, 12-hour `%I ... %p`, offsets `Z`/`+02:00`/`+0200`), or a time
alone. Day/month order is settled by the values: a value over 12 in the first position means
day first, in the second month first; dotted dates (`01.02.2013`) are day first. A column the
values cannot settle stays text, with the reason (see `Temporal.reason`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import polars as pl

from chute.coltypes import parse_temporal


@dataclass
class Temporal:
    """What a text column holds, if it is a date/time column."""

    kind: str | None  # 'date' | 'datetime' | 'time' | None (stays text)
    format: str | None = None  # chrono/strftime format for polars str.to_date/to_datetime/to_time
    tz: bool = False  # the values carry an offset (or Z): timestamptz, in UTC
    reason: str = ""  # why it stays text (kind None), or a note on the choice

    @property
    def type(self) -> str | None:
        """The chute column type it loads as."""
        if self.kind == "datetime":
            return "timestamptz" if self.tz else "timestamp"
        return self.kind


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_TIME = re.compile(
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?P<frac>[.,]\d{1,9})?)?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?"
    r"(?P<tz>\s*(?:Z|[+-]\d{2}:\d{2}|[+-]\d{4}))?$")


def _date_shape(value: str) -> tuple[str, tuple, int] | None:
    """(shape key, the numbers that decide day/month order, length of the date part), or None."""
    m = re.match(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?=$|[T ])", value)
    if m:
        return f"%Y{m[2]}%m{m[2]}%d", (), m.end()
    m = re.match(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})(?=$|[T ])", value)
    if m:
        year = "%Y" if len(m[4]) == 4 else "%y"
        return f"?{m[2]}{year}", (int(m[1]), int(m[3])), m.end()
    m = re.match(r"([A-Za-z]{3,9})\.? (\d{1,2})(,?) (\d{4})(?=$|[T ])", value)
    if m and m[1][:3].lower() in _MONTHS:  # chrono's %B accepts 'Jan' and 'January' (%b only 'Jan')
        return f"%B %d{m[3]} %Y", (), m.end()
    m = re.match(r"(\d{1,2})([ -])([A-Za-z]{3,9})\2(\d{4}|\d{2})(?=$|[T ])", value)
    if m and m[3][:3].lower() in _MONTHS:
        return f"%d{m[2]}%B{m[2]}{'%Y' if len(m[4]) == 4 else '%y'}", (), m.end()
    return None


def _time_format(rest: str) -> tuple[str, bool] | None:
    """The format of what follows the date ('' for nothing): (format, has an offset)."""
    if rest == "":
        return "", False
    if rest[0] not in "T ":
        return None
    m = _TIME.match(rest[1:])
    if not m:
        return None
    return rest[0] + _clock(m), bool(m["tz"])


def _clock(m: re.Match) -> str:
    fmt = ("%I" if m["ampm"] else "%H") + ":%M"
    if m["s"]:
        fmt += ":%S"
        if m["frac"]:
            fmt += "%.f" if m["frac"][0] == "." else ",%f"
    if m["ampm"]:
        fmt += (" " if re.search(r"\s[AaPp][Mm]", m[0]) else "") + "%p"
    if m["tz"]:
        tz = m["tz"].strip()
        fmt += (" " if m["tz"][0].isspace() else "") + ("%#z" if tz == "Z" or ":" in tz else "%z")
    return fmt


def looks_temporal(values: list[str]) -> bool:
    """Whether most values have a date or time shape (a column worth explaining when it stays text)."""
    some = values[:50]
    return bool(some) and sum(1 for v in some if _date_shape(v) or _TIME.match(v)) > len(some) // 2


def detect_temporal(values: pl.Series, max_values: int = 1000, *, tolerant: bool = False) -> Temporal:
    """The date/time format of a text column, from up to `max_values` distinct non-null values.

    A column is temporal only when every sampled value has one shape and parses with it; with
    `tolerant` (the user said the column is a date), values of no date shape are left out when
    most values have one, and are then rejected row by row at load time."""
    sample = [v.strip() for v in values.drop_nulls().unique(maintain_order=True).head(max_values).to_list()]
    sample = [v for v in sample if v]
    if tolerant:
        dated = [v for v in sample if _date_shape(v) is not None or _TIME.match(v)]
        if len(dated) * 2 > len(sample):
            sample = dated
    if not sample:
        return Temporal(None, reason="no values")
    if all(_TIME.match(v) for v in sample):
        fmt = _widest({_clock(_TIME.match(v)) for v in sample})
        if fmt is None:
            return Temporal(None, reason="times in more than one format")
        if "z" in fmt:
            return Temporal(None, reason="times with an offset and no date")
        return _checked(Temporal("time", fmt), sample)
    shapes: Counter = Counter()
    orders: list[tuple] = []
    times: set[tuple[str, bool]] = set()
    for v in sample:
        shape = _date_shape(v)
        if shape is None:
            return Temporal(None, reason=f"{v[:40]!r} is not a date")
        key, order, end = shape
        rest = _time_format(v[end:])
        if rest is None:
            return Temporal(None, reason=f"{v[:40]!r}: the part after the date is not a time")
        shapes[key] += 1
        times.add(rest)
        if order:
            orders.append(order)
    if len(shapes) > 1:
        return Temporal(None, reason=f"values in {len(shapes)} date layouts ({', '.join(shapes)})")
    key = next(iter(shapes))
    note = ""
    if key.startswith("?"):  # day/month order to settle
        sep, year = key[1], key[2:]
        first_over = any(a > 12 for a, _ in orders)
        second_over = any(b > 12 for _, b in orders)
        if first_over and second_over:
            return Temporal(None, reason="values over 12 in both the first and the second place: not one date order")
        if first_over:
            key = f"%d{sep}%m{sep}{year}"
        elif second_over:
            key = f"%m{sep}%d{sep}{year}"
        elif sep == ".":
            key, note = f"%d.%m.{year}", "day first: dotted dates are written day first"
        else:
            return Temporal(None, reason=f"ambiguous: every value fits both %m{sep}%d{sep}{year} and "
                                         f"%d{sep}%m{sep}{year} (no day over 12); give --date-format")
    time_fmts = {t for t, _ in times}
    if len({o for _, o in times}) > 1:
        return Temporal(None, reason="some values have a UTC offset and some do not")
    time_fmt = _widest(time_fmts)
    if time_fmt is None:
        if "" in time_fmts:
            return Temporal(None, reason="some values have a time and some do not")
        return Temporal(None, reason="times in more than one format")
    offset = any(o for _, o in times)
    return _checked(Temporal("date" if time_fmt == "" else "datetime", key + time_fmt, offset, note), sample)


def _checked(found: Temporal, sample: list[str]) -> Temporal:
    """`found`, if every sampled value parses with it (catches 2/30/2013, month 13, hour 25)."""
    bad = failures(pl.Series(sample), found.kind, found.format)
    if bad:
        return Temporal(None, reason=f"{bad} of {len(sample)} sampled values do not parse as {found.format}")
    return found


def _widest(fmts: set[str]) -> str | None:
    """One format for formats that differ only by fractional seconds, else None."""
    if len(fmts) == 1:
        return next(iter(fmts))
    if any("%.f" in f for f in fmts) and len({f.replace("%.f", "") for f in fmts}) == 1:
        return next(f for f in fmts if "%.f" in f)  # chrono's %.f also accepts no fraction
    return None


def failures(series: pl.Series, kind: str, fmt: str) -> int:
    """How many non-null values of `series` do not parse with `fmt`."""
    target = {"date": pl.Date(), "time": pl.Time()}.get(kind)
    try:
        parsed = pl.select(parse_temporal(pl.lit(series), fmt, target)).to_series()
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError, ValueError):
        return len(series)  # polars refuses the format outright (a %Y against two-digit years, say)
    return int((series.is_not_null() & parsed.is_null()).sum())

"""Runs over time, shaped for the charts: time buckets that fit the data, and what each holds.

A range (day, week, month, all) picks which runs count; the axis then spans from the bucket of
the first of them to now, in buckets sized so that there are at most MAX_BUCKETS of them (and at
least MIN_BUCKETS). All data in the last hour shows that hour in minutes, never 29 empty days
around one bar.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

RANGES = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "month": dt.timedelta(days=30), "all": None}
MAX_BUCKETS = 36
MIN_BUCKETS = 12  # a short span still gets a dozen columns (one run is one thin bar, not a slab)
STEPS = [60, 5 * 60, 15 * 60, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400]


def since(range_: str, now: dt.datetime) -> dt.datetime | None:
    span = RANGES[range_]
    return now - span if span else None


@dataclass
class Bucket:
    start: dt.datetime  # local time
    step: int  # seconds
    runs: list[dict] = field(default_factory=list)
    sums: dict | None = None  # grouped in SQL (from_sql): runs, totals, p50/p95, tables {name: rows}; no runs

    @property
    def label(self) -> str:
        if self.step >= 86400:
            return self.start.strftime("%d %b")
        return self.start.strftime("%a %Hh" if self.step >= 3 * 3600 else "%H:%M")

    @property
    def long_label(self) -> str:
        if self.step >= 86400:
            return self.start.strftime("%a %d %b %Y")
        end = self.start + dt.timedelta(seconds=self.step)
        return f"{self.start:%d %b %H:%M}–{end:%H:%M}"

    @property
    def run_count(self) -> int:
        return self.sums["runs"] if self.sums is not None else len(self.runs)

    def total(self, key: str) -> int:
        if self.sums is not None:
            return self.sums.get(key) or 0
        return sum(r[key] or 0 for r in self.runs)

    def table_rows(self, table: str) -> int:
        if self.sums is not None:
            return int(self.sums["tables"].get(table) or 0)
        return sum(int((r["tables"] or {}).get(table) or 0) for r in self.runs)

    def durations(self) -> list[float]:
        return sorted(r["seconds"] for r in self.runs if r["status"] != "running")

    def duration_percentile(self, p: int) -> float | None:
        if self.sums is not None:
            return self.sums[f"p{p}"]
        return percentile(self.durations(), p)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values (p in 0..100); None when there are none."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def _floor(t: dt.datetime, step: int) -> dt.datetime:
    """The start of t's bucket, in local time (days start at local midnight, weeks on Monday)."""
    t = t.astimezone()
    if step >= 30 * 86400:
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if step >= 7 * 86400:
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - dt.timedelta(days=day.weekday())
    if step >= 86400:
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = (t - midnight).total_seconds()
    return midnight + dt.timedelta(seconds=int(seconds // step) * step)


def _next(t: dt.datetime, step: int) -> dt.datetime:
    if step >= 30 * 86400:
        return (t.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (t + dt.timedelta(seconds=step)).astimezone()


def buckets(runs: list[dict], now: dt.datetime) -> list[Bucket]:
    """Buckets from the first run's to now's, the smallest step that keeps them few enough."""
    if not runs:
        return []
    out = axis(min(r["started_at"] for r in runs), now)
    starts = [b.start for b in out]
    for r in runs:
        key = _floor(r["started_at"], out[0].step)
        index = _index(starts, key)
        out[index].runs.append(r)
    return out


def axis(first: dt.datetime, now: dt.datetime) -> list[Bucket]:
    """The empty buckets from first's to now's."""
    span = max((now - first).total_seconds(), 1)
    step = next((s for s in STEPS if span / s <= MAX_BUCKETS - 1), STEPS[-1])
    out: list[Bucket] = []
    t, end = _floor(first, step), _floor(now, step)
    if step < 86400:
        t = min(t, end - dt.timedelta(seconds=step * (MIN_BUCKETS - 1)))
    while t <= end and len(out) < MAX_BUCKETS * 2:
        out.append(Bucket(t, step))
        t = _next(t, step)
    return out


def from_sql(summary: dict, bucket_sums: list[dict], bucket_tables: list[dict], tables: list[dict],
             axis_: list[Bucket]) -> tuple[list[Bucket], dict[str, Any], list[dict[str, Any]]]:
    """What buckets, summary and per_table make of the runs, from their sums in SQL (queries.trend_*):
    the buckets of `axis_` filled, the summary, the tables most rows first."""
    empty = {"runs": 0, "p50": None, "p95": None, "files_loaded": 0, "files_failed": 0, "rows_loaded": 0}
    for b in axis_:
        b.sums = dict(empty, tables={})
    for row in bucket_sums:
        axis_[row["bucket"] - 1].sums.update({k: v for k, v in row.items() if k != "bucket"})
    for row in bucket_tables:
        axis_[row["bucket"] - 1].sums["tables"][row["name"]] = row["rows"]
    totals = {k: summary[k] for k in ("runs", "failed", "p50", "p95", "files_loaded", "files_failed", "rows_loaded")}
    return axis_, totals, sorted(tables, key=lambda t: (-t["rows"], t["table"]))


def _index(starts: list[dt.datetime], key: dt.datetime) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last bucket starting at or before key
        mid = (lo + hi + 1) // 2
        if starts[mid] <= key:
            lo = mid
        else:
            hi = mid - 1
    return lo


def table_names(runs: list[dict]) -> list[str]:
    """Tables any of these runs wrote, most rows first."""
    totals: dict[str, int] = {}
    for r in runs:
        for name, n in (r["tables"] or {}).items():
            totals[name] = totals.get(name, 0) + int(n or 0)
    return sorted(totals, key=lambda n: (-totals[n], n))


def summary(runs: list[dict]) -> dict[str, Any]:
    """The numbers beside the charts: runs, failures, p50/p95 duration, files and rows."""
    finished = sorted(r["seconds"] for r in runs if r["status"] != "running")
    return {
        "runs": len(runs), "failed": sum(r["status"] == "failed" for r in runs),
        "p50": percentile(finished, 50), "p95": percentile(finished, 95),
        "files_loaded": sum(r["files_loaded"] or 0 for r in runs),
        "files_failed": sum(r["files_failed"] or 0 for r in runs),
        "rows_loaded": sum(r["rows_loaded"] or 0 for r in runs),
    }


def per_table(runs: list[dict]) -> list[dict[str, Any]]:
    """Per table: the runs that wrote it, rows in all, and rows per run (median, largest)."""
    out = []
    for name in table_names(runs):
        counts = sorted(int(r["tables"][name] or 0) for r in runs if name in (r["tables"] or {}))
        out.append({"table": name, "runs": len(counts), "rows": sum(counts),
                    "p50": percentile(counts, 50), "max": counts[-1] if counts else 0})
    return out

"""Selection: what a trigger scopes a run to, applied to a listing."""

from __future__ import annotations

from chute.sources.base import FileEntry
from chute.sources.selection import Selection

NOW = 1_000 * 10**9


def _entry(name: str, age_s: float = 3600) -> FileEntry:
    return FileEntry(name, f"file:///{name}", 1, NOW - int(age_s * 1e9), name)


ENTRIES = [_entry("a.csv"), _entry("b/c.csv"), _entry("b/d.csv", age_s=1), _entry("e.csv", age_s=1)]


def _names(selection: Selection) -> list[str]:
    return [e.name for e in selection.filter(ENTRIES, now_ns=NOW)]


def test_the_default_selection_is_everything():
    assert _names(Selection()) == ["a.csv", "b/c.csv", "b/d.csv", "e.csv"]


def test_names_prefix_and_skip_narrow_the_listing():
    assert _names(Selection(only=["a.csv", "b/c.csv"])) == ["a.csv", "b/c.csv"]
    assert _names(Selection(only=[])) == []
    assert _names(Selection(prefix="b/")) == ["b/c.csv", "b/d.csv"]
    assert _names(Selection(prefix="b/", skip={"b/c.csv"})) == ["b/d.csv"]


def test_recent_files_wait_unless_confirmed():
    assert _names(Selection(min_age=60)) == ["a.csv", "b/c.csv"]
    assert _names(Selection(min_age=60, confirmed=["e.csv"])) == ["a.csv", "b/c.csv", "e.csv"]


def test_a_selection_is_frozen_and_hashable():
    s = Selection(only=["a.csv"], skip=["b"])
    assert s == Selection(only=frozenset({"a.csv"}), skip=frozenset({"b"}))
    assert hash(s) == hash(Selection(only={"a.csv"}, skip={"b"}))

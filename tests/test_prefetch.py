"""read_ahead: the same items in order, errors passed on, bounded, and stopped early cleanly;
and the groups of small files a run reads ahead."""

from __future__ import annotations

import threading

import pytest

from chute.run.prefetch import read_ahead


def test_same_items_in_order():
    assert list(read_ahead(iter(range(1000)))) == list(range(1000))


def test_producer_runs_at_most_depth_ahead():
    made = []

    def produce():
        for i in range(10):
            made.append(i)
            yield i

    stream = read_ahead(produce(), depth=1)
    assert next(stream) == 0
    threading.Event().wait(0.2)  # give the producer time to run ahead as far as it can
    assert len(made) <= 3  # the one consumed, one queued, one waiting to be queued
    assert list(stream) == list(range(1, 10))


def test_error_reaches_the_consumer_after_the_good_items():
    def produce():
        yield 1
        raise ValueError("bad block")

    stream = read_ahead(produce())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad block"):
        next(stream)


def test_stopping_early_closes_the_producer():
    closed = threading.Event()

    def produce():
        try:
            for i in range(1_000_000):
                yield i
        finally:
            closed.set()

    stream = read_ahead(produce())
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()


def test_small_files_are_read_in_groups_of_at_most_8_mb_after_a_first_of_4():
    """One group loads while the next is read, each ~5x its size in memory: the stocks run
    peaked at ~720 MB with groups growing to batch_mb (64 MB), ~470 MB with 8 MB ones."""
    from types import SimpleNamespace

    from chute.run.runner import Runner
    from chute.sources.base import FileEntry

    files = [FileEntry(f"f{i}.csv", "", 100_000, 0, "") for i in range(2_000)]  # 200 MB of 100 KB files
    groups = list(Runner._groups(SimpleNamespace(batch_bytes=64 << 20), files))
    sizes = [sum(e.size for e in g) for g in groups]
    assert sum(len(g) for g in groups) == len(files)
    assert sizes[0] <= 4 << 20 and max(sizes) <= 8 << 20 and len(groups) >= 200_000_000 // (8 << 20)
    small = list(Runner._groups(SimpleNamespace(batch_bytes=2 << 20), files))  # a smaller batch_mb caps them
    assert max(sum(e.size for e in g) for g in small) <= 2 << 20

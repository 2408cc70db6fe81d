"""read_ahead: the same items in order, errors passed on, bounded, and stopped early cleanly."""

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

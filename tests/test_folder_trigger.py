"""The folder trigger's idea of a complete file, without a database: each way a file lands."""

from __future__ import annotations

import queue
import time

from chute.watch.folder import FolderTrigger


def started(landing, settle=30.0):
    requests: queue.Queue = queue.Queue()
    trigger = FolderTrigger(landing, ["*.csv"], settle=settle)
    trigger.start(requests.put)
    return trigger, requests


def names_within(requests, seconds):
    deadline, names = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        try:
            names += requests.get(timeout=0.1).names
        except queue.Empty:
            pass
    return names


def test_a_file_moved_in_from_outside_is_taken_at_once_not_after_settle(tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    outside.mkdir()
    (outside / "prices.csv").write_text("a\n1\n")
    trigger, requests = started(landing)  # settle 30 s: only the move can make it complete
    try:
        (outside / "prices.csv").rename(landing / "prices.csv")
        assert names_within(requests, 3) == ["prices.csv"]
    finally:
        trigger.stop()


def test_a_file_still_open_for_writing_is_not_taken(tmp_path):
    landing = tmp_path / "landing"
    trigger, requests = started(landing)
    try:
        with open(landing / "slow.csv", "w") as f:
            f.write("a\n1\n")
            f.flush()
            assert names_within(requests, 1.5) == []  # created and opened by its writer: wait for the close
        assert names_within(requests, 3) == ["slow.csv"]  # closed after writing
    finally:
        trigger.stop()

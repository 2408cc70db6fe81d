"""Fixtures for `chute watch`: a small project, a watch service as a real subprocess, and
bounded polling (no sleeps standing in for timing assertions)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ITEMS_TOML = """
[project]
name = "items"

[landing]
patterns = ["*.csv"]

[pipeline]
module = "pipeline.py"

[tables.items]
columns = {{ id = "integer", value = "text" }}

[watch]
debounce = 0.05
settle = 0.5
rescan = 2
{watch}
{extra}
"""

# A node that can be slowed down (to keep a worker busy while another joins) or made to
# fail (for dead letters), through files in the project rather than code changes.
PIPELINE_PY = '''
import time
from pathlib import Path

import polars as pl
from chute import node

HERE = Path(__file__).parent


@node(outputs="items")
def items(rows: pl.DataFrame) -> pl.DataFrame:
    if (HERE / "FAIL").exists():
        raise ValueError("the FAIL switch is on")
    delay = HERE / "DELAY"
    if delay.exists():
        time.sleep(float(delay.read_text()))
    return rows
'''


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def csv_rows(start: int, count: int) -> str:
    return "id,value\n" + "".join(f"{i},v{i}\n" for i in range(start, start + count))


@pytest.fixture
def items_project(tmp_path):
    """make(watch="lease = 5", extra="[[schedules]]...") -> a project folder with landing/."""

    def make(watch: str = "", extra: str = "", name: str = "items") -> Path:
        folder = tmp_path / name
        (folder / "landing").mkdir(parents=True)
        (folder / "chute.toml").write_text(ITEMS_TOML.format(watch=watch, extra=extra), encoding="utf-8")
        (folder / "pipeline.py").write_text(PIPELINE_PY, encoding="utf-8")
        return folder

    return make


def drop(folder: Path, name: str, content: str) -> Path:
    """Write a file the way careful tools do: a hidden temporary name, then a rename."""
    final = folder / "landing" / name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(final)
    return final


class WatchProcess:
    """`chute watch` as a real subprocess, its log in a file."""

    def __init__(self, project: Path, log: Path, *args: str):
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "chute.cli", "watch", "-p", str(project),
                                      "--metrics-port", "0", *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ))
        self.wait_log("run (startup)", what="the watch to start")
        # ... and its startup run to end: files a test drops from now on are new to the watch (on a
        # busy machine the startup run could otherwise still be listing, and take them itself).
        wait_until(lambda: re.search(r"\brun \S+ \w+ in [0-9.]+s", self.log()) or self.proc.poll() is not None,
                   60, what=f"the startup run to end: {self.log()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 60, what: str | None = None) -> str:
        def seen():
            if self.proc.poll() is not None and text not in self.log():
                raise AssertionError(f"chute watch exited ({self.proc.returncode}):\n{self.log()}")
            return text in self.log()
        wait_until(seen, timeout, what=what or repr(text))
        return self.log()

    @property
    def metrics_url(self) -> str:
        port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", self.log())
        assert port, self.log()
        return f"http://127.0.0.1:{port[1]}/metrics"

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._log.close()


@pytest.fixture
def watch_process(tmp_path):
    """start(project, *args) -> a running WatchProcess; all are stopped at the end."""
    started: list[WatchProcess] = []

    def start(project: Path, *args: str) -> WatchProcess:
        w = WatchProcess(project, tmp_path / f"watch-{len(started)}.log", *args)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.kill()

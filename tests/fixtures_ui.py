"""Fixtures for the dashboard tests: a stocks project with real runs in a real database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chute.config.project import load_project
from chute.run.runner import Runner

from conftest import write


@pytest.fixture
def ui_project(stocks: Path, db_url: str):
    """The stocks fixture after two runs: the first loads everything, the second meets a broken file."""
    project = load_project(stocks)
    first = Runner(project, db_url).run()
    assert first.ok, first.error
    top = (stocks / "reference" / "top_companies.txt").read_text().split(",")[0].strip().strip("'\"")
    write(stocks / "landing" / top, "Date,Open\n2017-01-02\n")  # a top company's file, broken
    second = Runner(project, db_url, trigger="watch").run()
    assert second.status == "failed" and second.count("failed") == 1
    return project


@pytest.fixture
def ui_client(ui_project, db_url):
    from fastapi.testclient import TestClient

    from chute.ui.app import create_app

    with TestClient(create_app(ui_project, db_url), base_url="http://127.0.0.1") as client:
        yield client


def chromium_path() -> str | None:
    path = os.environ.get("CHUTE_CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


# Volumes above this are rejected by the contract the quarantine tests add (about a third of the
# generated rows); raising it is "the fix" before a replay.
VOLUME_MAX = 1_000_000


@pytest.fixture
def rejects_project(stocks: Path, db_url: str):
    """The stocks fixture with a contract on volume_traded, after one run that quarantined rows."""
    config = stocks / "chute.toml"
    config.write_text(config.read_text() + f"\n[tables.historical_stocks_data.contract.columns.volume_traded]\n"
                      f"max = {VOLUME_MAX}\n")
    # The example keeps each record's position (source_row) through its node, which `chute
    # replay` needs to find quarantined records in their file again.
    assert 'source_row=pl.col("source_row")' in (stocks / "pipeline.py").read_text()
    project = load_project(stocks)
    summary = Runner(project, db_url).run()
    assert summary.ok, summary.error
    return project


@pytest.fixture
def rejects_client(rejects_project, db_url):
    from fastapi.testclient import TestClient

    from chute.ui.app import create_app

    with TestClient(create_app(rejects_project, db_url), base_url="http://127.0.0.1") as client:
        yield client

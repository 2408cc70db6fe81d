"""Failed files that a person deals with: deleted from the landing zone they are `gone` (shown,
not counted as failing); `chute forget` resolves them in the ledger, keeping their history;
purging a file's dead letter resolves it too."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from conftest import write

from chute.cli._common import EXIT_ERROR, EXIT_FAILED, EXIT_OK
from chute.config.project import load_project
from chute.ui.app import create_app

BROKEN = "broken.us.csv"


def broken(stocks):
    """The stocks project with one listed company whose file is broken (a terminal failure)."""
    top = (stocks / "reference" / "top_companies.txt").read_text().strip()
    write(stocks / "reference" / "top_companies.txt", top + f", '{BROKEN}'")
    write(stocks / "landing" / BROKEN, "Date,Open\n2017-01-02,1,2,3\n")
    return stocks


def status(cli, project) -> dict:
    return json.loads(cli("status", "-p", project, "--json").stdout)


def test_a_deleted_failed_file_is_gone_not_failing_in_status_and_on_the_dashboard(stocks, cli, db_url):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    before = status(cli, project)
    assert (before["overview"]["failed"], before["overview"]["gone"]) == (1, 0)
    assert [(f["name"], f["state"]) for f in before["failed_files"]] == [(BROKEN, "failed")]

    (project / "landing" / BROKEN).unlink()
    after = status(cli, project)
    assert (after["overview"]["failed"], after["overview"]["gone"]) == (0, 1)
    assert [(f["name"], f["state"]) for f in after["failed_files"]] == [(BROKEN, "gone")]
    text = " ".join(cli("status", "-p", project).output.split())
    assert "0 failed" in text and "1 failed and gone from the landing zone" in text
    assert "gone: failed, then deleted from the landing zone" in text
    assert any(BROKEN in line and " gone " in line for line in cli("status", "-p", project).output.splitlines())
    cli("run", "-p", project, expect=EXIT_OK)  # nothing waits: the run is clean

    with TestClient(create_app(load_project(project), db_url), base_url="http://127.0.0.1") as client:
        page = client.get("/").text
    failed_card = page[page.index('id="card-failed"'):][:200]
    assert '<span class="n">0</span>' in failed_card
    gone_card = page[page.index('id="card-gone"'):][:400]
    assert '<span class="n">1</span>' in gone_card and "failed files gone" in gone_card


def test_forget_gone_resolves_them_in_the_ledger_and_keeps_their_history(stocks, cli, db_url, query):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    (project / "landing" / BROKEN).unlink()
    done = json.loads(cli("forget", "--gone", "-p", project, "--json").stdout)
    assert done["forgotten"] == [BROKEN]
    after = status(cli, project)
    assert (after["overview"]["failed"], after["overview"]["gone"], after["failed_files"]) == (0, 0, [])
    assert "failed" not in after["files"] and after["files"]["resolved"] == 1  # the files: line agrees
    [(state, error, resolved, how)] = query("SELECT status, error, resolved_at IS NOT NULL, resolution"
                                            " FROM chute.files WHERE name = %s", (BROKEN,))
    assert state == "failed" and error and resolved and "chute forget" in how  # history kept, resolution noted
    [(letter,)] = query("SELECT status FROM chute.dead_letters WHERE name = %s", (BROKEN,))
    assert letter == "resolved"
    assert json.loads(cli("forget", "--gone", "-p", project, "--json").stdout)["forgotten"] == []


def test_forget_by_name_stops_a_waiting_failure_from_failing_runs(stocks, cli, db_url, query):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    assert "not a failed file" in cli("forget", "nosuch.csv", "-p", project, expect=EXIT_ERROR).output
    assert "NAME(s) or --gone" in cli("forget", "-p", project, expect=EXIT_ERROR).output
    cli("forget", BROKEN, "--note", "vendor sends a fixed file tomorrow", "-p", project)
    cli("run", "-p", project, expect=EXIT_OK)  # still in the landing zone, but resolved: not retried
    assert query("SELECT attempts, resolution FROM chute.files WHERE name = %s", (BROKEN,)) == [
        (1, "forgotten with chute forget: vendor sends a fixed file tomorrow")]
    # A changed file is a new version, loaded (or failed) as usual.
    write(project / "landing" / BROKEN, "Date,Open,High,Low,Close,Volume\n2017-01-02,1,2,0.5,1.5,100\n")
    cli("run", "-p", project, expect=EXIT_OK)
    assert query("SELECT count(*) FROM historical_stocks_data WHERE company_name = 'broken'") == [(1,)]


def test_a_failed_file_landed_again_fixed_is_superseded_not_failed_in_status(stocks, cli, db_url):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    assert status(cli, project)["files"]["failed"] == 1
    write(project / "landing" / BROKEN, "Date,Open,High,Low,Close,Volume\n2017-01-02,1,2,0.5,1.5,100\n")
    cli("run", "-p", project, expect=EXIT_OK)
    after = status(cli, project)
    assert "failed" not in after["files"] and after["files"]["superseded"] == 1
    assert after["overview"]["failed"] == 0 and after["failed_files"] == []
    line = cli("status", "-p", project).output.splitlines()[0]
    assert "1 superseded" in line and "failed" not in line


def test_purging_a_files_dead_letter_resolves_it(stocks, cli, db_url, query):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    [letter] = json.loads(cli("dlq", "list", "-p", project, "--json").stdout)["dead_letters"]
    cli("dlq", "purge", str(letter["id"]), "-p", project)
    assert status(cli, project)["overview"]["failed"] == 0
    cli("run", "-p", project, expect=EXIT_OK)
    assert query("SELECT status, resolution FROM chute.files WHERE name = %s", (BROKEN,)) == [
        ("failed", "its dead letter was purged (chute dlq purge)")]

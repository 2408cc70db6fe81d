"""Dead letters: a file that fails for good is recorded; `chute dlq list / retry / purge`."""

from __future__ import annotations

import json

from chute.ledger import schema
from chute.ledger import deadletters
from chute.db.postgres import connect
from fixtures_watch import csv_rows, drop


def dlq(cli, project, *args, expect=0):
    return json.loads(cli("dlq", *args, "-p", project, "--json", expect=expect).output)


def test_terminal_failure_becomes_dead_letter_and_retry_loads_it_once(items_project, cli, db_url, query):
    project = items_project()
    drop(project, "good.csv", csv_rows(1, 2))
    drop(project, "bad.csv", "id,value\n\x00\x01\x02 binary\n")  # not a CSV at all: terminal
    cli("run", "-p", project, expect=1)
    [letter] = dlq(cli, project, "list")["dead_letters"]
    assert (letter["kind"], letter["name"], letter["status"], letter["attempts"]) == ("file", "bad.csv", "dead", 1)
    assert "binary data" in letter["error"]

    # A plain run does not retry it (bad.csv still waits: exit 1 unless told to judge this run alone).
    cli("run", "-p", project, "--ignore-old-failures")
    assert query("SELECT attempts FROM chute.files WHERE name = 'bad.csv'") == [(1,)]

    # The data is fixed upstream by a node switch here: the failure came from the FAIL node.
    (project / "FAIL").write_text("on")
    drop(project, "node.csv", csv_rows(10, 3))
    cli("run", "-p", project, expect=1)
    letters = {d["name"]: d for d in dlq(cli, project, "list")["dead_letters"]}
    assert set(letters) == {"bad.csv", "node.csv"}
    (project / "FAIL").unlink()

    requeued = dlq(cli, project, "retry", str(letters["node.csv"]["id"]))
    assert requeued["requeued"] == [letters["node.csv"]["id"]]
    assert dlq(cli, project, "retry", str(letters["node.csv"]["id"]))["requeued"] == []  # already queued
    cli("run", "-p", project, "--ignore-old-failures")  # node.csv loads; bad.csv (not re-queued) is left alone
    cli("run", "-p", project, "--ignore-old-failures")  # and the next run takes nothing again
    assert query("SELECT count(*) FROM items WHERE id >= 10") == [(3,)]  # exactly once
    open_letters = dlq(cli, project, "list")["dead_letters"]
    assert [d["name"] for d in open_letters] == ["bad.csv"]
    resolved = [d for d in dlq(cli, project, "list", "--all")["dead_letters"] if d["status"] == "resolved"]
    assert [d["name"] for d in resolved] == ["node.csv"]

    # --all re-queues bad.csv: it fails again (same bad data) and is dead again, attempts counted.
    assert dlq(cli, project, "retry", "--all")["requeued"] == [letters["bad.csv"]["id"]]
    cli("run", "-p", project, expect=1)
    [again] = dlq(cli, project, "list")["dead_letters"]
    assert (again["name"], again["status"], again["attempts"]) == ("bad.csv", "dead", 2)

    purged = dlq(cli, project, "purge", "--all")["purged"]
    assert sorted(purged) == sorted([letters["bad.csv"]["id"], letters["node.csv"]["id"]])
    assert dlq(cli, project, "list", "--all")["dead_letters"] == []
    assert query("SELECT status FROM chute.files WHERE name = 'bad.csv'") == [("failed",)]  # history kept
    cli("run", "-p", project)  # purged: resolved, so it no longer keeps the exit status at 1


def test_dlq_errors(items_project, cli, db_url):
    project = items_project()
    out = cli("dlq", "retry", "-p", project, expect=2).output
    assert "ID(s) or --all" in out
    assert "no dead letter with id 99" in cli("dlq", "purge", "99", "-p", project, expect=2).output
    assert "no dead letters" in cli("dlq", "list", "-p", project).output


def test_events_spooled_while_the_database_is_down_are_recorded(items_project, db_url, query):
    project = items_project()
    state = project / ".chute"
    deadletters.spool_event(state, "items", "ev-1", "folder", "cannot connect", {"names": ["a.csv"]})
    with connect(db_url) as conn:

        schema.ensure_schema(conn)
        assert deadletters.flush_spool(conn, state) == 1
        assert deadletters.flush_spool(conn, state) == 0
    assert query("SELECT kind, name, version, error FROM chute.dead_letters") == [
        ("event", "folder", "ev-1", "cannot connect")]
    assert not (state / deadletters.SPOOL).exists()

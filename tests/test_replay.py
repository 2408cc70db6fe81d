"""`chute replay`: after the contract or the data is fixed, quarantined records load exactly once."""

from __future__ import annotations

import json

from conftest import write
from fixtures_quality import HEADER, land, make_project

BODY = ("1,2024-01-02,ABC,buy,1,a\n"      # line 2 good
        "2,2024-01-02,ABC,hold,1,b\n"     # 3 allowed
        "3,2024-01-02,ABC,hold,-1,c\n"    # 4 allowed + min
        "4,2024-01-02,ABC,hold,2,d\n")    # 5 allowed


def allow_hold(project):
    toml = project / "chute.toml"
    write(toml, toml.read_text().replace('allowed = ["buy", "sell"]', 'allowed = ["buy", "sell", "hold"]'))


def test_replay_after_fixing_the_contract_loads_exactly_once(trades, cli, query):
    land(trades, "a.csv", BODY)
    cli("run", "-p", trades)
    assert query("SELECT count(*) FROM chute.rejects WHERE replay_state = 'pending'")[0][0] == 4
    allow_hold(trades)
    result = json.loads(cli("replay", "-p", trades, "--file", "a.csv", "--json").output)
    [f] = result["files"]
    assert f["records_replayed"] == 2 and f["rows_loaded"] == 2 and f["records_still_failing"] == 1
    assert any("below the minimum" in reason for reason in f["still_failing_because"])
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 2, 4]
    states = query("SELECT line_number, check_name, replay_state, replay_run_id IS NOT NULL FROM chute.rejects"
                   " ORDER BY line_number, check_name")
    assert states == [(3, "allowed", "replayed", True), (4, "allowed", "pending", False),
                      (4, "min", "pending", False), (5, "allowed", "replayed", True)]
    assert query("SELECT status, rows_loaded, rows_rejected FROM chute.files") == [("loaded_with_rejects", 3, 1)]
    # Replaying again loads nothing twice: the replayed records are no longer pending.
    again = json.loads(cli("replay", "-p", trades, "--file", "a.csv", "--json").output)
    assert again["records_replayed"] == 0
    cli("run", "-p", trades)
    assert query("SELECT count(*), count(DISTINCT id) FROM trades") == [(3, 3)]
    runs = query("SELECT trigger, status, rows_loaded FROM chute.runs ORDER BY run_id")
    assert runs[1] == ("replay", "succeeded", 2)


def test_replay_one_reject_by_id_and_then_the_rest(trades, cli, query):
    land(trades, "a.csv", BODY)
    cli("run", "-p", trades)
    allow_hold(trades)
    reject_id = query("SELECT reject_id FROM chute.rejects WHERE line_number = 5")[0][0]
    one = json.loads(cli("replay", "-p", trades, "--id", reject_id, "--json").output)
    assert one["records_replayed"] == 1
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 4]
    # Then the rest, with a corrected copy of the file (line 4 fixed in place).
    fixed = write(trades / "fixed.csv", HEADER + BODY.replace("3,2024-01-02,ABC,hold,-1,c", "3,2024-01-02,ABC,hold,1,c"))
    rest = json.loads(cli("replay", "-p", trades, "--file", "a.csv", "--data", fixed, "--json").output)
    assert rest["records_replayed"] == 2
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 2, 3, 4]
    assert query("SELECT status, rows_loaded, rows_rejected FROM chute.files") == [("loaded", 4, 0)]
    assert query("SELECT count(*) FROM chute.rejects WHERE replay_state = 'pending'")[0][0] == 0
    assert "nothing to replay" in cli("replay", "-p", trades, expect=2).output


def test_ragged_line_replayed_from_a_corrected_copy(trades, cli, query):
    land(trades, "r.csv", "1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,ABC\n3,2024-01-02,ABC,buy,3,c\n")
    cli("run", "-p", trades)
    assert query("SELECT line_number, check_name FROM chute.rejects") == [(3, "parse")]
    changed = write(trades / "landing" / "r.csv", HEADER + "1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,ABC,buy,2,b\n"
                                                         "3,2024-01-02,ABC,buy,3,c\n")
    assert "changed since it was loaded" in cli("replay", "-p", trades, "--file", "r.csv", expect=2).output
    result = json.loads(cli("replay", "-p", trades, "--file", "r.csv", "--data", changed, "--json").output)
    assert result["records_replayed"] == 1
    assert query("SELECT id, trader FROM trades ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]


def test_a_corrected_copy_is_replayed_when_the_landing_folder_is_gone(trades, cli, query):
    land(trades, "a.csv", BODY)
    cli("run", "-p", trades)
    fixed = write(trades / "fixed.csv", HEADER + BODY.replace("hold", "buy"))
    (trades / "landing" / "a.csv").unlink()
    (trades / "landing").rmdir()
    result = json.loads(cli("replay", "-p", trades, "--file", "a.csv", "--data", fixed, "--json").output)
    assert result["records_replayed"] == 2  # line 4 still has a negative quantity
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 2, 4]


def test_a_file_failed_by_a_threshold_is_replayed_whole(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="max_rejects = 1")
    land(project, "a.csv", BODY)
    cli("run", "-p", project, expect=1)
    assert query("SELECT status FROM chute.files") == [("failed",)]
    allow_hold(project)
    result = json.loads(cli("replay", "-p", project, "--file", "a.csv", "--json").output)
    assert result["files"][0]["status"] == "loaded_with_rejects"
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 2, 4]
    assert query("SELECT count(*) FROM chute.rejects")[0][0] == 1  # line 4: price below the minimum

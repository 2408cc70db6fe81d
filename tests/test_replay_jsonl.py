"""`chute replay` of rejects from JSON-lines files: a line the contract refused loads after the
contract is fixed, and a line that was not JSON loads from a corrected copy (--data), each
exactly once; the raw line is what the quarantine keeps. Real PostgreSQL."""

from __future__ import annotations

import json

from conftest import write

PROJECT = """
[project]
name = "events"
[landing]
patterns = ["*.jsonl"]
[source]
format = "jsonl"
[pipeline]
input = "events"
[tables.events]
mode = "append"
columns = {id = "int", kind = "text", amount = "float"}
[tables.events.contract.columns.kind]
allowed = ["click", "view"]
"""

LINES = ['{"id": 1, "kind": "click", "amount": 1.0}',   # line 1 good
         '{"id": 2, "kind": "buy", "amount": 2.0}',     # 2 not allowed (yet)
         '{"id": 3, "kind": "view", "amount": 3.0',     # 3 not JSON
         '{"id": 4, "kind": "view", "amount": 4.0}']    # 4 good


def test_replay_of_jsonl_rejects_loads_them_exactly_once(tmp_path, db_url, cli, query):
    project = tmp_path / "events"
    write(project / "chute.toml", PROJECT)
    write(project / "landing" / "e.jsonl", "\n".join(LINES) + "\n")
    cli("run", "-p", project)
    assert query("SELECT id FROM events ORDER BY id") == [(1,), (4,)]
    assert query("SELECT line_number, raw_record FROM chute.rejects ORDER BY line_number") == [
        (2, LINES[1]), (3, LINES[2])]

    # The contract is fixed: line 2 loads; line 3 is still not JSON and stays pending.
    write(project / "chute.toml", PROJECT.replace('["click", "view"]', '["click", "view", "buy"]'))
    result = json.loads(cli("replay", "-p", project, "--file", "e.jsonl", "--json").output)
    [f] = result["files"]
    assert f["records_replayed"] == 1 and f["rows_loaded"] == 1 and f["records_still_failing"] == 1, f
    assert query("SELECT id FROM events ORDER BY id") == [(1,), (2,), (4,)]

    # Line 3 fixed in place in a copy: it loads, and nothing else loads twice.
    fixed = write(tmp_path / "fixed.jsonl", "\n".join([*LINES[:2], LINES[2] + "}", LINES[3]]) + "\n")
    rest = json.loads(cli("replay", "-p", project, "--file", "e.jsonl", "--data", fixed, "--json").output)
    assert rest["records_replayed"] == 1
    assert query("SELECT id, kind, amount FROM events ORDER BY id") == [
        (1, "click", 1.0), (2, "buy", 2.0), (3, "view", 3.0), (4, "view", 4.0)]
    assert query("SELECT status, rows_loaded, rows_rejected FROM chute.files") == [("loaded", 4, 0)]
    assert "nothing to replay" in cli("replay", "-p", project, expect=2).output
    cli("run", "-p", project)
    assert query("SELECT count(*), count(DISTINCT id) FROM events") == [(4, 4)]

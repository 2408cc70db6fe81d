"""Quarantine: parse errors line by line, PII masked, rejects committed with the rows
(exactly once, even across a crash), and the `chute rejects` commands."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from conftest import write
from fixtures_quality import HEADER, land

PERSONS = ("alice", "bob", "carol", "dave", "erin", "frank")


def test_ragged_and_undecodable_lines_are_quarantined_line_by_line(trades, cli, query):
    body = ("1,2024-01-02,ABC,buy,1,alice\n"          # 2 good
            "2,2024-01-02,ABC,buy\n"                    # 3 too few fields
            "3,2024-01-02,ABC,buy,1,bob,extra\n"        # 4 too many
            "4,2024-01-02,ABC,buy,1,carol\n").encode()  # 5 good
    body += "5,2024-01-02,ABC,caf\xe9,1,dave\n".encode("latin-1")  # 6 not UTF-8
    body += b"6,2024-01-02,ABC,sell,2,erin\n"          # 7 good
    write(trades / "landing" / "messy.csv", HEADER.encode() + body)
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["files_with_rejects"] == 1 and summary["rows_rejected"] == 3
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 4, 6]
    rejects = query("SELECT line_number, row_number, check_name, reason, raw_record FROM chute.rejects ORDER BY 1")
    assert [(r[0], r[1], r[2]) for r in rejects] == [(3, 2, "parse"), (4, 3, "parse"), (6, 5, "parse")]
    assert rejects[0][3] == "ragged row: expected 6 fields, got 4"
    assert rejects[1][3] == "ragged row: expected 6 fields, got 7"
    assert rejects[2][3].startswith("not valid utf-8 text")
    # A ragged record of a file with PII columns is withheld (its PII position is unknown);
    # a record that splits right shows everything but the PII value.
    assert rejects[0][4].startswith("*** (record withheld")
    assert rejects[2][4] == "5,2024-01-02,ABC,caf\ufffd,1,***"
    assert query("SELECT status, rows_read, rows_loaded, rows_rejected FROM chute.files") == [
        ("loaded_with_rejects", 6, 3, 3)]


def test_an_unclosed_quote_is_one_reject_not_a_failed_file(trades, cli, query):
    land(trades, "quote.csv", '1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,"ABC,buy,1,b\n3,2024-01-02,ABC,buy,1,c\n')
    cli("run", "-p", trades)
    assert query("SELECT id FROM trades") == [(1,)]
    [(line, reason)] = query("SELECT line_number, reason FROM chute.rejects")
    assert line == 3 and "unclosed quote" in reason


def test_a_quote_left_open_in_the_last_field_is_a_reject_not_the_rest_of_the_file(trades, cli, query):
    # The record has its six fields, so nothing looks ragged: the quote runs to the end of the file.
    land(trades, "open.csv", '1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,ABC,buy,1,"b\n3,2024-01-02,ABC,buy,1,c\n')
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["files_with_rejects"] == 1 and summary["rows_rejected"] == 1
    assert query("SELECT id FROM trades") == [(1,)]
    [(line, reason)] = query("SELECT line_number, reason FROM chute.rejects")
    assert line == 3 and reason.startswith("unclosed quote: the quote opened in the record on line 3 is never closed")


def test_pii_is_masked_everywhere_in_quarantine(trades, cli, query):
    body = "".join(f"{i},2024-01-02,ABC,hold,1,{name}\n" for i, name in enumerate(PERSONS, 1))
    land(trades, "pii.csv", body + "9,2024-01-02,ABC\n")
    write(trades / "chute.toml", (trades / "chute.toml").read_text().replace(
        '[tables.trades.contract.columns.side]', '[tables.trades.contract.columns.trader]\nregex = "^z"\n\n'
        '[tables.trades.contract.columns.side]'))
    cli("run", "-p", trades)
    rows = query("SELECT column_name, value, raw_record FROM chute.rejects")
    assert len(rows) == 2 * len(PERSONS) + 1
    text = json.dumps(rows)
    assert not any(name in text for name in PERSONS)
    assert {r[1] for r in rows if r[0] == "trader"} == {"***"}
    exported = cli("rejects", "export", "-", "-p", trades).output
    assert not any(name in exported for name in PERSONS)


def test_rejects_commit_with_the_rows_or_not_at_all(trades, db_url, query):
    land(trades, "a.csv", "1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,ABC,hold,1,b\n")
    env = {**os.environ, "CHUTE_CRASH_AT": "before_commit"}
    crashed = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(trades)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 86, crashed.stderr
    assert query("SELECT count(*) FROM chute.rejects")[0][0] == 0
    assert query("SELECT count(*) FROM trades")[0][0] == 0
    rerun = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(trades)], capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    again = subprocess.run([sys.executable, "-m", "chute.cli", "run", "-p", str(trades)], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0
    assert query("SELECT count(*) FROM chute.rejects")[0][0] == 1
    assert query("SELECT count(*) FROM trades")[0][0] == 1
    assert query("SELECT count(*) FROM pg_class WHERE relname = 'chute_stage_rejects' AND relpersistence = 'p'"
                 )[0][0] == 0


def test_rejects_list_show_export_with_filters(trades, cli, query, tmp_path):
    land(trades, "a.csv", "1,2024-01-02,ABC,hold,1,a\n2,2024-01-02,abc,buy,1,b\n3,2024-01-02,ABC,buy,-4,c\n")
    land(trades, "b.csv", "4,2024-01-02,ABC,hold,1,a\n")
    cli("run", "-p", trades)
    listed = json.loads(cli("rejects", "list", "-p", trades, "--json").output)
    assert len(listed) == 4
    assert [r["line_number"] for r in json.loads(cli("rejects", "list", "-p", trades, "--file", "a.csv",
                                                     "--json").output)] == [2, 3, 4]
    by_column = json.loads(cli("rejects", "list", "-p", trades, "--column", "side", "--json").output)
    assert {r["file_name"] for r in by_column} == {"a.csv", "b.csv"}
    by_reason = json.loads(cli("rejects", "list", "-p", trades, "--reason", "MINIMUM", "--json").output)
    assert [(r["file_name"], r["line_number"], r["value"]) for r in by_reason] == [("a.csv", 4, "-4")]
    table = cli("rejects", "list", "-p", trades).output
    assert "file" in table and "reason" in table and len(table.strip().splitlines()) >= 6
    shown = json.loads(cli("rejects", "show", str(by_reason[0]["reject_id"]), "-p", trades, "--json").output)
    assert shown["raw_record"] == "3,2024-01-02,ABC,buy,-4,***" and shown["check_name"] == "min"
    assert "raw_record" in cli("rejects", "show", str(by_reason[0]["reject_id"]), "-p", trades).output
    assert "no reject 999" in cli("rejects", "show", "999", "-p", trades, expect=2).output
    out = tmp_path / "rejects.csv"
    result = json.loads(cli("rejects", "export", out, "-p", trades, "--check", "allowed", "--json").output)
    assert result["rejects"] == 2
    rows = list(csv.DictReader(out.open()))
    assert [(r["file_name"], r["line_number"], r["check_name"]) for r in rows] == [("a.csv", "2", "allowed"),
                                                                                  ("b.csv", "2", "allowed")]


def test_a_streamed_file_quarantines_bad_records_block_by_block(trades, cli, query):
    # batch_mb this small makes the file "big": streamed in ~20 KB blocks, never read whole.
    write(trades / "chute.toml", (trades / "chute.toml").read_text().replace(
        'pii_columns = ["trader"]', 'pii_columns = ["trader"]\nbatch_mb = 0.02'))
    good = [f"{i},2024-01-02,ABC,buy,1,t{i}\n" for i in range(1, 3001)]
    bad = {1200: "1200,2024-01-02,ABC\n",                  # ragged, in a later block
           2500: "2500,not a date,ABC,buy,1,t2500\n"}      # a value that does not convert
    lines = [bad.get(i, good[i - 1]) for i in range(1, 3001)]
    path = land(trades, "big.csv", "".join(lines))
    assert path.stat().st_size > 4 * 20_000
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["files_with_rejects"] == 1 and summary["rows_rejected"] == 2
    assert query("SELECT count(*) FROM trades")[0][0] == 2998
    rejects = query("SELECT row_number, line_number, check_name, raw_record FROM chute.rejects ORDER BY 1")
    # Row n is on line n + 1 (the header is line 1), wherever its block starts.
    assert [(r[0], r[1]) for r in rejects] == [(1200, 1201), (2500, 2501)]
    assert rejects[0][3].startswith("*** (record withheld")  # ragged, and the file has PII columns
    assert query("SELECT status, rows_read, rows_loaded, rows_rejected FROM chute.files") == [
        ("loaded_with_rejects", 3000, 2998, 2)]
    # The rows after the bad ones keep their own numbers: a contract reject there points right.
    assert query("SELECT min(id), max(id) FROM trades WHERE id > 2500") == [(2501, 3000)]


def test_a_streamed_file_with_content_already_loaded_is_skipped_while_the_others_load(trades, cli, query):
    """A big file is hashed while it streams; content already loaded is refused before commit.
    The table has no primary key, so nothing but that check stops the rows going in twice."""
    write(trades / "chute.toml", (trades / "chute.toml").read_text().replace(
        'pii_columns = ["trader"]', 'pii_columns = ["trader"]\nbatch_mb = 0.02').replace('primary_key = ["id"]', ''))
    body = "".join(f"{i},2024-01-02,ABC,buy,1,t{i}\n" for i in range(1, 3001))
    land(trades, "big.csv", body)
    first = json.loads(cli("run", "-p", trades, "--json").output)
    assert first["files_loaded"] == 1 and first["rows_loaded"] == 3000
    # The same content under another name, in one run with a new small file and a new big one.
    land(trades, "big-copy.csv", body)
    land(trades, "small.csv", "5001,2024-01-03,XYZ,sell,2,s1\n")
    land(trades, "big2.csv", "".join(f"{i},2024-01-04,DEF,buy,3,u{i}\n" for i in range(6001, 9001)))
    second = json.loads(cli("run", "-p", trades, "--json").output)
    outcomes = {f["name"]: f["status"] for f in second["files"]}
    assert outcomes == {"big-copy.csv": "skipped", "small.csv": "loaded", "big2.csv": "loaded"}, second["files"]
    assert query("SELECT count(*) FROM trades")[0][0] == 3000 + 1 + 3000
    assert query("SELECT f.status, d.name FROM chute.files f JOIN chute.files d ON d.file_id = f.duplicate_of "
                 "WHERE f.name = 'big-copy.csv'") == [("skipped", "big.csv")]
    # Rewritten with the same bytes (a new mtime): unchanged, nothing loaded again.
    (trades / "landing" / "big.csv").write_text(HEADER + body)
    third = json.loads(cli("run", "-p", trades, "--json").output)
    assert third["files_loaded"] == 0 and third["unchanged"] >= 1
    assert query("SELECT count(*) FROM trades")[0][0] == 6001


def test_files_read_together_keep_their_own_lines_and_counts(trades, cli, query):
    # a.csv, c.csv and d.csv are plain: parsed as one text. b.csv quotes a value, so it is read
    # alone (a quoted record may span lines), and has a ragged line.
    land(trades, "a.csv", "1,2024-01-02,ABC,buy,1,t\n2,2024-01-02,ABC,hold,1,t\n")
    land(trades, "b.csv", '3,2024-01-02,ABC,"buy",1,t\n4,2024-01-02\n5,2024-01-02,ABC,buy,1,t\n')
    land(trades, "c.csv", "6,2024-01-02,ABC,buy,1,t\n")
    land(trades, "d.csv", "7,2024-01-02,ABC,buy,1,t\n8,2024-01-02,ABC,buy,1,t\n9,2024-01-02,ABC,buy,-1,t\n")
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["files_loaded"] == 4 and summary["rows_rejected"] == 3
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [1, 3, 5, 6, 7, 8]
    assert query("SELECT file_name, line_number, row_number, check_name FROM chute.rejects ORDER BY 1") == [
        ("a.csv", 3, 2, "allowed"), ("b.csv", 3, 2, "parse"), ("d.csv", 4, 3, "min")]
    assert query("SELECT name, rows_read, rows_loaded, rows_rejected FROM chute.files ORDER BY 1") == [
        ("a.csv", 2, 1, 1), ("b.csv", 3, 2, 1), ("c.csv", 1, 1, 0), ("d.csv", 3, 2, 1)]

"""Contracts: a file with good and bad rows loads the good ones; the bad ones go to
chute.rejects with their line and reason; thresholds fail a file instead."""

from __future__ import annotations

import json

from conftest import write
from fixtures_quality import land, make_project

# line 1 is the header
MIXED = (
    "1,2024-01-02,ABC,buy,10.5,alice\n"        # 2 good
    "2,2024-01-02,ABC,hold,10.5,bob\n"         # 3 allowed
    "3,2024-01-02,abc,buy,10.5,carol\n"        # 4 regex
    "4,2024-01-02,ABC,buy,,dave\n"             # 5 not_null
    "5,2024-01-02,ABC,buy,-1,erin\n"           # 6 min
    "6,not-a-date,ABC,buy,1,frank\n"           # 7 type (day)
    "7,2024-01-02,ABC,sell,0.5,gina\n"         # 8 rule
    "8,2024-01-02,TOOLONG,buy,1,hank\n"        # 9 length (varchar(5))
    "1,2024-01-03,ABC,buy,2,ivan\n"            # 10 unique (primary key, append mode)
    '9,2024-01-02,XYZ,sell,999,"multi\nline"\n'  # 11-12 good, a quoted newline
    "10,2024-01-02,ABC,buy,abc,kim\n"          # 13 type (price)
    "\n"                                       # 14 blank: no record
    "11,2024-01-02,XYZ,buy,5000,lee\n"         # 15 max
)
EXPECTED = {  # line -> (check, column)
    3: ("allowed", "side"), 4: ("regex", "symbol"), 5: ("not_null", "price"), 6: ("min", "price"),
    7: ("type", "day"), 8: ("no_penny_sells", "price"), 9: ("length", "symbol"), 10: ("unique", "id"),
    13: ("type", "price"), 15: ("max", "price"),
}


def test_mixed_file_loads_good_rows_and_quarantines_bad_ones(trades, cli, query):
    land(trades, "mixed.csv", MIXED)
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["status"] == "succeeded"
    assert summary["files_loaded"] == 1 and summary["files_with_rejects"] == 1
    assert summary["rows_loaded"] == 2 and summary["rows_rejected"] == len(EXPECTED)
    assert query("SELECT id, symbol, price FROM trades ORDER BY id") == [(1, "ABC", 10.5), (9, "XYZ", 999.0)]
    assert query("SELECT status, rows_read, rows_loaded, rows_rejected FROM chute.files") == [
        ("loaded_with_rejects", 12, 2, len(EXPECTED))]
    assert query("SELECT rows_loaded, rows_rejected FROM chute.runs") == [(2, len(EXPECTED))]
    rejects = query("SELECT line_number, check_name, column_name, reason, value, raw_record, target_table,"
                    " replay_state, file_id IS NOT NULL FROM chute.rejects ORDER BY line_number")
    assert {r[0]: (r[1], r[2]) for r in rejects} == EXPECTED
    by_line = {r[0]: r for r in rejects}
    assert by_line[3][3].startswith("not one of the allowed values (buy, sell)") and by_line[3][4] == "hold"
    assert by_line[6][3] == "below the minimum 0" and by_line[6][4] == "-1"
    assert by_line[7][3] == "not a valid date" and by_line[7][4] == "not-a-date"
    assert by_line[8][3] == "sells under 1 are not allowed"
    assert by_line[13][4] == "abc"
    assert by_line[15][5] == "11,2024-01-02,XYZ,buy,5000,***"  # the source line, PII masked
    assert all(r[6] == "public.trades" and r[7] == "pending" and r[8] for r in rejects)


def test_a_row_failing_several_checks_has_one_reject_per_check(trades, cli, query):
    land(trades, "two.csv", "1,2024-01-02,ABC,buy,1,a\n2,2024-01-02,abc,hold,-5,b\n")
    cli("run", "-p", trades)
    assert sorted(query("SELECT check_name FROM chute.rejects WHERE line_number = 3")) == [
        ("allowed",), ("min",), ("regex",)]
    assert query("SELECT rows_rejected FROM chute.files") == [(1,)]


def test_max_rejects_fails_the_file_and_loads_nothing_of_it(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="max_rejects = 1")
    land(project, "bad.csv", "1,2024-01-02,ABC,hold,1,a\n2,2024-01-02,ABC,hold,1,b\n3,2024-01-02,ABC,buy,1,c\n")
    land(project, "ok.csv", "4,2024-01-02,ABC,hold,1,a\n5,2024-01-02,ABC,buy,1,b\n")
    summary = json.loads(cli("run", "-p", project, "--json", expect=1).output)
    assert summary["files_failed"] == 1 and summary["files_loaded"] == 1
    status = dict(query("SELECT name, status FROM chute.files"))
    assert status == {"bad.csv": "failed", "ok.csv": "loaded_with_rejects"}
    error = query("SELECT error FROM chute.files WHERE name = 'bad.csv'")[0][0]
    assert "2 rows rejected for table trades, more than its contract's max_rejects 1" in error
    assert "not one of the allowed values" in error
    assert query("SELECT id FROM trades") == [(5,)]
    assert query("SELECT DISTINCT file_name FROM chute.rejects") == [("ok.csv",)]


def test_max_reject_ratio_fails_the_file(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="max_reject_ratio = 0.25")
    land(project, "half.csv", "1,2024-01-02,ABC,hold,1,a\n2,2024-01-02,ABC,buy,1,b\n")
    land(project, "quarter.csv", "3,2024-01-02,ABC,hold,1,a\n4,2024-01-02,ABC,buy,1,b\n"
                                 "5,2024-01-02,ABC,buy,1,c\n6,2024-01-02,ABC,buy,1,d\n")
    cli("run", "-p", project, expect=1)
    assert dict(query("SELECT name, status FROM chute.files")) == {"half.csv": "failed",
                                                                   "quarter.csv": "loaded_with_rejects"}
    assert "1 of 2 rows rejected for table trades (50.0%)" in query(
        "SELECT error FROM chute.files WHERE name = 'half.csv'")[0][0]
    assert [r[0] for r in query("SELECT id FROM trades ORDER BY id")] == [4, 5, 6]


PYTHON_CONTRACT = '''
import polars as pl
from chute import node
from chute.quality import ColumnRules, Contract, Rule

trades_contract = Contract(
    "trades",
    columns={"id": ColumnRules(max=100)},
    rules=[Rule(name="cheap", expr=pl.col("price") < 500, message="price 500 or more needs approval", column="price")],
)

@node(outputs="trades")
def shape(rows: pl.DataFrame) -> pl.DataFrame:
    return rows
'''


def test_contract_declared_in_python_adds_to_the_toml_one(tmp_path, cli, query):
    project = make_project(tmp_path / "p", pipeline=PYTHON_CONTRACT)
    land(project, "a.csv", "1,2024-01-02,ABC,buy,10,a\n200,2024-01-02,ABC,buy,10,b\n"
                           "3,2024-01-02,ABC,buy,600,c\n4,2024-01-02,ABC,hold,10,d\n")
    cli("run", "-p", project)
    assert query("SELECT id FROM trades") == [(1,)]
    assert query("SELECT line_number, check_name, reason FROM chute.rejects ORDER BY line_number") == [
        (3, "max", "above the maximum 100"), (4, "cheap", "price 500 or more needs approval"),
        (5, "allowed", "not one of the allowed values (buy, sell)")]


def test_invalid_contracts_are_config_errors(tmp_path, cli):
    bad_regex = make_project(tmp_path / "a")
    write(bad_regex / "chute.toml", (bad_regex / "chute.toml").read_text().replace('"^[A-Z]+$"', '"(["'))
    result = cli("run", "-p", bad_regex, expect=2)
    assert "regex" in result.output and "does not compile" in result.output
    unknown = make_project(tmp_path / "b", contract="on_drift = 'x'")
    assert "unknown key" in cli("run", "-p", unknown, expect=2).output
    bad_rule = make_project(tmp_path / "c")
    write(bad_rule / "chute.toml", (bad_rule / "chute.toml").read_text().replace(
        "NOT (side = 'sell' AND price < 1)", "side = = 'x'"))
    assert "does not parse" in cli("run", "-p", bad_rule, expect=2).output

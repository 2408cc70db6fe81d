"""Drift policy for columns the data has and the table lacks (or the reverse):
evolve adds nullable columns without losing data, freeze fails the file, discard drops them."""

from __future__ import annotations

import json

from conftest import write
from fixtures_quality import make_project

OLD = "id,day,symbol,side,price,trader\n1,2024-01-02,ABC,buy,1,a\n"
NEW = "id,day,symbol,side,price,trader,venue,qty\n2,2024-01-03,ABC,buy,2,b,XNAS,7\n"
MISSING = "id,day,symbol,side,price\n3,2024-01-04,ABC,sell,3\n"


def _run_three(project, cli, expect_new=0):
    write(project / "landing" / "1.csv", OLD)
    cli("run", "-p", project)
    write(project / "landing" / "2.csv", NEW)
    return json.loads(cli("run", "-p", project, "--json", expect=expect_new).output)


def test_evolve_adds_nullable_columns_and_keeps_the_data(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="drift = 'evolve'")
    _run_three(project, cli)
    columns = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'trades'"))
    assert columns["venue"] == "text" and columns["qty"] == "bigint"
    assert query("SELECT id, venue, qty FROM trades ORDER BY id") == [(1, None, None), (2, "XNAS", 7)]
    # Later files: with the new columns, and without them (and without a declared one).
    write(project / "landing" / "3.csv", "id,day,symbol,side,price,trader,venue,qty\n4,2024-01-05,ABC,buy,2,b,XLON,9\n")
    write(project / "landing" / "4.csv", MISSING)
    cli("run", "-p", project)
    assert query("SELECT id, trader, venue, qty FROM trades ORDER BY id") == [
        (1, "a", None, None), (2, "b", "XNAS", 7), (3, None, None, None), (4, "b", "XLON", 9)]


def test_evolve_is_undone_with_a_failed_load(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="drift = 'evolve'\nmax_rejects = 0")
    write(project / "landing" / "1.csv", OLD)
    cli("run", "-p", project)
    write(project / "landing" / "2.csv", NEW.replace(",buy,", ",hold,"))  # rejected past the threshold
    cli("run", "-p", project, expect=1)
    columns = [r[0] for r in query("SELECT column_name FROM information_schema.columns WHERE table_name = 'trades'")]
    assert "venue" not in columns  # the ALTER TABLE rolled back with the rows


def test_freeze_fails_a_file_with_new_or_missing_columns(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="drift = 'freeze'")
    summary = _run_three(project, cli, expect_new=1)
    assert summary["files_failed"] == 1
    write(project / "landing" / "3.csv", MISSING)
    cli("run", "-p", project, expect=1)
    errors = dict(query("SELECT name, error FROM chute.files WHERE status = 'failed'"))
    assert "column(s) venue, qty that the table does not have" in errors["2.csv"]
    assert "set [tables.trades.contract] drift = 'evolve' (adds them)" in errors["2.csv"]
    assert "the data has no column(s) trader" in errors["3.csv"]
    assert query("SELECT id FROM trades") == [(1,)]


def test_discard_drops_extra_columns_and_fills_missing_ones_with_null(tmp_path, cli, query):
    project = make_project(tmp_path / "p", contract="drift = 'discard'")
    _run_three(project, cli)
    write(project / "landing" / "3.csv", MISSING)
    cli("run", "-p", project)
    columns = [r[0] for r in query("SELECT column_name FROM information_schema.columns WHERE table_name = 'trades'")]
    assert "venue" not in columns and "qty" not in columns
    assert query("SELECT id, trader FROM trades ORDER BY id") == [(1, "a"), (2, "b"), (3, None)]

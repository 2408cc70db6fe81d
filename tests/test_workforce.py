"""The workforce example: an Excel report sheet with sub-tables separated by
blank rows and two-row headers; the headcount-by-gender table of the other entities is
rebuilt, checked and loaded. Expected values are read from the workbooks with openpyxl."""

from __future__ import annotations

import json
import shutil

import openpyxl
import pytest

from chute.examples.scaffold import create_project
from conftest import shared

TABLE = "headcount_by_gender_other_entities"
REAL = "qld-biannual-report-sept-2020-open-data-tables.xlsx"


def expected_rows(path) -> list[tuple]:
    """The rows under the "Headcount" group whose label column is headed "Other entities"."""
    ws = openpyxl.load_workbook(path, read_only=True, data_only=True)["pg 18 and 19 gender"]
    rows = [r[:6] for r in ws.iter_rows(values_only=True)]
    out = []
    for i in range(1, len(rows)):
        if rows[i][0] == "Other entities" and rows[i - 1][1] == "Headcount":
            for r in rows[i + 1:]:
                if r[0] is None or str(r[0]).startswith("Sector"):
                    break
                out.append((path.stem, r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5])))
    return sorted(out)


def loaded(query) -> list[tuple]:
    return sorted(query(f"SELECT * FROM {TABLE}"))


def test_real_workbook(tmp_path, cli, query):
    source = shared("workforce", REAL)
    folder = tmp_path / "wf"
    create_project(folder, "workforce", files=0)
    shutil.copy(source, folder / "landing" / REAL)
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["status"] == "succeeded" and summary["rows_loaded"] == 9
    rows = loaded(query)
    assert rows == expected_rows(folder / "landing" / REAL)
    assert rows[0][1:5] == ("Legal Aid Queensland", 480, 143, 623)
    assert all(abs(r[5] + r[6] - 1) < 1e-9 for r in rows)  # decimals, not percents
    assert sum(r[4] for r in rows) == 2360  # the sheet's own sub-total


def test_generated_workbooks_and_a_rerun(tmp_path, cli, query):
    folder = tmp_path / "wf"
    info = create_project(folder, "workforce", files=3, seed=5)
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["files_loaded"] == 3
    want = sorted(r for p in (folder / "landing").glob("*.xlsx") for r in expected_rows(p))
    assert loaded(query) == want and len(want) == info["data"]["rows"]
    cli("run", "-p", folder)
    assert loaded(query) == want


def _break(path, cell_value):
    wb = openpyxl.load_workbook(path)
    ws = wb["pg 18 and 19 gender"]
    rows = list(ws.iter_rows())
    for i, row in enumerate(rows):
        if row[0].value == "Other entities" and rows[i - 1][1].value == "Headcount":
            cell_value(rows[i + 1])
            break
    wb.save(path)


@pytest.mark.parametrize("damage,message", [
    (lambda row: setattr(row[3], "value", row[3].value + 1), "headcount_female + headcount_male = headcount_total"),
    (lambda row: setattr(row[4], "value", 0.9), "percentage_female + percentage_male"),
    (lambda row: setattr(row[2], "value", None), "no empty cells"),
    (lambda row: setattr(row[1], "value", "many"), "not a number"),
])
def test_bad_workbook_fails_with_the_rule_it_breaks(tmp_path, cli, query, damage, message):
    folder = tmp_path / "wf"
    create_project(folder, "workforce", files=2, seed=5)
    bad = sorted((folder / "landing").glob("*.xlsx"))[0]
    _break(bad, damage)
    summary = json.loads(cli("run", "-p", folder, "--json", expect=1).output)
    failed = [f for f in summary["files"] if f["status"] == "failed"]
    assert [f["name"] for f in failed] == [bad.name] and message in failed[0]["error"]
    assert summary["files_loaded"] == 1  # the good workbook still loads


def test_missing_sheet_and_non_workbook_are_read_errors(tmp_path, cli, db_url):
    folder = tmp_path / "wf"
    create_project(folder, "workforce", files=0)
    wb = openpyxl.Workbook()
    wb.active.title = "something else"
    wb.save(folder / "landing" / "other.xlsx")
    (folder / "landing" / "fake.xlsx").write_text("not a workbook")
    summary = json.loads(cli("run", "-p", folder, "--json", expect=1).output)
    errors = {f["name"]: f["error"] for f in summary["files"]}
    assert "no sheet 'pg 18 and 19 gender'" in errors["other.xlsx"] and "something else" in errors["other.xlsx"]
    assert "not a readable Excel workbook" in errors["fake.xlsx"]


def test_plain_sheet_with_header_and_declared_types(tmp_path, cli, query):
    import datetime as dt

    from conftest import write

    write(tmp_path / "chute.toml", """
[project]
name = "plain"
[landing]
patterns = ["*.xlsx"]
[source]
format = "excel"
sheet = 1
[source.columns]
when = "date"
amount = "double"
[tables.rows]
[tables.rows.columns]
name = "text"
when = "date"
amount = "double"
""")
    wb = openpyxl.Workbook()
    wb.active.append(["cover"])
    ws = wb.create_sheet("data")
    ws.append(["name", "when", "amount"])
    ws.append(["a", "2024-01-02", 0.1234567890123])
    ws.append([])
    ws.append(["b", dt.datetime(2024, 1, 3), 208])  # a real date cell
    (tmp_path / "landing").mkdir()
    wb.save(tmp_path / "landing" / "x.xlsx")
    cli("run", "-p", tmp_path)
    assert query("SELECT * FROM rows ORDER BY name") == [
        ("a", dt.date(2024, 1, 2), 0.1234567890123), ("b", dt.date(2024, 1, 3), 208.0)]

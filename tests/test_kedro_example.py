"""`chute init X --example kedro`: the workforce job (Excel sub-tables with two-row headers) as a
Kedro project. It loads the same values as today's workforce example, on the real workbook and
on generated ones."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest

from chute.examples.scaffold import create_project
from conftest import shared
from test_workforce import REAL, TABLE, _break, expected_rows

pytest.importorskip("kedro")
pytest.importorskip("kedro_datasets")


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(f"SELECT * FROM {TABLE}").fetchall())


def _both(tmp_path, cli, db_url, other_db, workbooks) -> tuple[list[tuple], list[tuple]]:
    """The kedro example and the workforce example on the same workbooks: (kedro rows, workforce rows)."""
    for example, url in (("kedro", db_url), ("workforce", other_db)):
        folder = tmp_path / example
        create_project(folder, example, files=0)
        for path in workbooks:
            shutil.copy(path, folder / "landing" / path.name)
        summary = json.loads(cli("run", "-p", folder, "--json", "--db", url).output)
        assert summary["status"] == "succeeded", summary
    return _rows(db_url), _rows(other_db)


def test_the_real_workbook_loads_as_the_workforce_example_loads_it(tmp_path, cli, db_url, other_db):
    kedro_rows, workforce_rows = _both(tmp_path, cli, db_url, other_db, [shared("workforce", REAL)])
    assert kedro_rows == workforce_rows
    assert kedro_rows == expected_rows(shared("workforce", REAL))
    assert len(kedro_rows) == 9 and kedro_rows[0][1:5] == ("Legal Aid Queensland", 480, 143, 623)


def test_generated_workbooks_load_as_the_workforce_example_loads_them(tmp_path, cli, db_url, other_db):
    generated = tmp_path / "generated"
    info = create_project(generated, "kedro", files=3, seed=5)
    workbooks = sorted((generated / "landing").glob("*.xlsx"))
    kedro_rows, workforce_rows = _both(tmp_path, cli, db_url, other_db, workbooks)
    assert kedro_rows == workforce_rows
    assert kedro_rows == sorted(r for p in workbooks for r in expected_rows(p))
    assert len(kedro_rows) == info["data"]["rows"]


@pytest.mark.parametrize("damage,message", [
    (lambda row: setattr(row[3], "value", row[3].value + 1), "headcount_female + headcount_male = headcount_total"),
    (lambda row: setattr(row[4], "value", 0.9), "percentage_female + percentage_male"),
    (lambda row: setattr(row[2], "value", None), "no empty cells"),
    (lambda row: setattr(row[1], "value", "many"), "'many' is not a number"),
])
def test_a_bad_workbook_fails_with_the_rule_it_breaks(tmp_path, cli, db_url, damage, message):
    folder = tmp_path / "wk"
    create_project(folder, "kedro", files=2, seed=5)
    bad = sorted((folder / "landing").glob("*.xlsx"))[0]
    _break(bad, damage)
    summary = json.loads(cli("run", "-p", folder, "--json", expect=1).output)
    failed = [f for f in summary["files"] if f["status"] == "failed"]
    assert [f["name"] for f in failed] == [bad.name] and message in failed[0]["error"]
    assert summary["files_loaded"] == 1


def test_the_example_deploys_as_a_state_machine_of_its_kedro_nodes(tmp_path, cli):
    folder = tmp_path / "wk"
    create_project(folder, "kedro", files=0)
    cli("deploy", "aws", "--project", folder, "--out", folder / "infra")
    machine = json.loads((folder / "infra" / "statemachine.asl.json").read_text())
    process = machine["States"]["Files"]["ItemProcessor"]["States"]["Process"]
    assert process["Comment"].endswith("cut_table -> to_numbers -> check_and_shape")  # the Kedro graph, in order
    assert (folder / "infra" / "project" / "src" / "workforce_kedro" / "pipelines" / "workforce" / "nodes.py").is_file()

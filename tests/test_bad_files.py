"""Bad files end as `failed` with a clear error while the other files load."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import STOCK_FILES, TOP_FILES, write
from fixtures_quality import land

HEADER = "Date,Open,High,Low,Close,Volume,OpenInt\n"
BAD = {
    "empty.us.txt": (b"", "the file is empty"),
    "ragged.us.txt": ((HEADER + "2017-01-02,1,2,3\n").encode(), "ragged row: expected 7 columns, got 4"),
    # Nothing in it loads (a file with good rows too loads them; the others go to quarantine).
    "latin.us.txt": (HEADER.encode() + "caf\xe9,1,2,3,4,5,6\n".encode("latin-1"),
                     "column 'Date': CSV conversion error to date32[day]: invalid value"),
    "binary.us.txt": (bytes(range(256)) * 20, "binary data"),
    "notcsv.us.txt": (b'{"json": "document", "not": ["a", "csv"]}\n{"a": 1}\n', None),
    "badvalue.us.txt": ((HEADER + "2017-01-02,abc,2,1,1.5,10,0\n").encode(), "column 'Open'"),
    "unclosed.us.txt": ((HEADER + '2017-01-02,1,2,1,1.5,10,"0\n2017-01-03,1,2,1,1.5,10,0\n').encode(),
                        "a quoted field is never closed: line 2"),
    "twice.us.txt": ((HEADER.replace("High", "Open") + "2017-01-02,1,2,1,1.5,10,0\n").encode(),
                     "the header names column 'Open' twice (columns 2 and 3)"),
}


@pytest.fixture
def project(stocks):
    names = [f"'{n.replace('.us.txt', '.us.csv')}'" for n in BAD]
    top = (stocks / "reference" / "top_companies.txt").read_text().strip()
    write(stocks / "reference" / "top_companies.txt", top + ", " + ", ".join(names))
    for name, (content, _) in BAD.items():
        write(stocks / "landing" / name, content)
    return stocks


def test_bad_files_fail_and_good_files_load(project, cli, query):
    result = cli("run", "-p", project, "--json", expect=1)
    summary = json.loads(result.output)
    assert summary["status"] == "failed"
    assert summary["files_loaded"] == TOP_FILES and summary["files_failed"] == len(BAD)
    errors = dict(query("SELECT name, error FROM chute.files WHERE status = 'failed'"))
    assert set(errors) == set(BAD)
    for name, (_, expected) in BAD.items():
        assert errors[name], name
        if expected:
            assert expected.lower() in errors[name].lower(), (name, errors[name])
    assert "Traceback" not in result.output
    good = query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0]
    assert good == TOP_FILES


def test_failed_files_are_kept_for_retry_not_reloaded_silently(project, cli, query):
    cli("run", "-p", project, expect=1)
    # Nothing new: the run itself succeeds, and still exits 1 while the failed files wait (issue 25).
    second = json.loads(cli("run", "-p", project, "--json", expect=1).output)
    assert second["status"] == "succeeded"
    assert second["files_failed"] == 0 and len(second["still_failed"]) == len(BAD)
    # Fixing a file (new content) loads it on the next run.
    write(project / "landing" / "ragged.us.txt", HEADER + "2017-01-02,1,2,0.5,1.5,10,0\n")
    third = json.loads(cli("run", "-p", project, "--json", expect=1).output)  # the other bad files still wait
    assert third["files_loaded"] == 1
    assert query("SELECT count(*) FROM historical_stocks_data WHERE company_name = 'ragged'")[0][0] == 1
    retried = json.loads(cli("run", "-p", project, "--json", "--retry-failed", expect=1).output)
    assert retried["files_failed"] == len(BAD) - 1
    attempts = query("SELECT attempts FROM chute.files WHERE name = 'empty.us.txt'")[0][0]
    assert attempts == 2


def test_gzip_and_latin1_files_load_when_declared(tmp_path, cli, query):
    from chute.examples.scaffold import create_project

    folder = tmp_path / "p"
    create_project(folder, "stocks", files=0)
    write(folder / "reference" / "top_companies.txt", "'zip.us.csv'")
    write(folder / "landing" / "zip.us.txt", gzip.compress((HEADER + "2017-01-02,1,2,0.5,1.5,10,0\n").encode()))
    cli("run", "-p", folder)
    assert query("SELECT company_name, close_value FROM historical_stocks_data") == [("zip", 1.5)]


def test_database_refusal_fails_only_the_offending_file(stocks, cli, query, db_url):
    """A CHECK constraint added to the table refuses one file's rows inside the shared
    transaction; the unit is redone so that only that file fails."""
    import psycopg

    cli("run", "-p", stocks)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE historical_stocks_data ADD CONSTRAINT not_refused CHECK (company_name <> 'refused')")
    top = stocks / "reference" / "top_companies.txt"
    write(top, top.read_text().strip() + ", 'refused.us.csv', 'fine.us.csv'")
    for name in ("refused", "fine"):
        write(stocks / "landing" / f"{name}.us.txt", HEADER + "2017-01-02,1,2,0.5,1.5,10,0\n")
    write(stocks / "landing" / "fine.us.txt", HEADER + "2017-01-03,1,2,0.5,1.5,10,0\n")  # other content
    summary = json.loads(cli("run", "-p", stocks, "--json", expect=1).output)
    assert summary["files_loaded"] == 1 and summary["files_failed"] == 1
    error = query("SELECT error FROM chute.files WHERE status = 'failed'")[0][0]
    assert "violates check constraint" in error
    assert query("SELECT count(DISTINCT company_name) FROM historical_stocks_data")[0][0] == TOP_FILES + 1


def test_a_file_name_that_is_not_utf8_loads_under_a_name_the_ledger_can_hold(trades, cli, query):
    land(trades, "ok.csv", "1,2024-01-02,ABC,buy,1,a\n")
    land(trades, "caf\udce9.csv", "2,2024-01-02,ABC,buy,2,b\n")  # a Latin-1 é in the name: not UTF-8
    summary = json.loads(cli("run", "-p", trades, "--json").output)
    assert summary["status"] == "succeeded" and summary["files_loaded"] == 2
    assert query("SELECT name, status FROM chute.files ORDER BY name") == [("caf\\xe9.csv", "loaded"),
                                                                          ("ok.csv", "loaded")]
    again = json.loads(cli("run", "-p", trades, "--json").output)
    assert again["files_loaded"] == 0 and again["unchanged"] == 2  # the same name every run
    assert query("SELECT count(*) FROM trades")[0][0] == 2

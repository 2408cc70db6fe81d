"""Files without rows: a header and no rows loads with 0 rows (the summary says so) unless the
table's contract sets min_rows; a zero-byte file fails unless [source] empty_files = "load"."""

from __future__ import annotations

import json

from conftest import TOP_FILES, write

HEADER = "Date,Open,High,Low,Close,Volume,OpenInt\n"


def listed(stocks, files: dict[str, str | bytes]):
    """Top companies whose landing files hold `files`' contents."""
    top = (stocks / "reference" / "top_companies.txt").read_text().strip()
    write(stocks / "reference" / "top_companies.txt", top + "".join(f", '{n}'" for n in files))
    for name, content in files.items():
        write(stocks / "landing" / name, content)
    return stocks


def set_in(stocks, section: str, line: str):
    config = stocks / "chute.toml"
    text = config.read_text()
    if section in text:
        text = text.replace(section + "\n", f"{section}\n{line}\n", 1)
    else:
        text += f"\n{section}\n{line}\n"
    config.write_text(text)


def test_header_only_files_load_with_0_rows_and_the_summary_notes_them(stocks, cli, query):
    # Two tickers that did not trade: the same bytes, and each its own company's (empty) file.
    project = listed(stocks, {"quiet.us.txt": HEADER, "still.us.txt": HEADER})
    summary = json.loads(cli("run", "-p", project, "--json").stdout)
    assert summary["status"] == "succeeded" and summary["files_loaded"] == TOP_FILES + 2
    assert sorted(summary["files_without_rows"]) == ["quiet.us.txt", "still.us.txt"]
    assert query("SELECT name, status, rows_read, rows_loaded FROM chute.files WHERE name IN"
                 " ('quiet.us.txt', 'still.us.txt') ORDER BY name") == [
        ("quiet.us.txt", "loaded", 0, 0), ("still.us.txt", "loaded", 0, 0)]

    write(project / "landing" / "later.us.txt", HEADER)  # alone in its run
    listed(project, {"later.us.txt": HEADER})
    text = " ".join(cli("run", "-p", project).output.split())
    assert "1 loaded, 0 failed" in text
    assert "1 file(s) had no data rows (a header only, or empty) and loaded with 0 rows: later.us.txt" in text


def test_min_rows_makes_a_file_without_rows_fail(stocks, cli, query):
    set_in(stocks, "[tables.historical_stocks_data.contract]", "min_rows = 1")
    project = listed(stocks, {"quiet.us.txt": HEADER})
    summary = json.loads(cli("run", "-p", project, "--json", expect=1).stdout)
    assert summary["files_loaded"] == TOP_FILES and summary["files_failed"] == 1
    [(status, error)] = query("SELECT status, error FROM chute.files WHERE name = 'quiet.us.txt'")
    assert status == "failed"
    assert error == ("quiet.us.txt: no data rows, and table historical_stocks_data must get at least 1 from each "
                     "file (its contract's min_rows)")


def test_a_zero_byte_file_fails_by_default_and_loads_when_told(stocks, cli, query):
    project = listed(stocks, {"zero.us.txt": b""})
    cli("run", "-p", project, expect=1)
    [(status, error)] = query("SELECT status, error FROM chute.files WHERE name = 'zero.us.txt'")
    assert status == "failed" and error.startswith("the file is empty (0 bytes)")
    assert "[source] empty_files = 'load'" in error

    set_in(project, "[source]", 'empty_files = "load"')
    summary = json.loads(cli("run", "-p", project, "--json", "--retry-failed").stdout)
    assert summary["files_without_rows"] == ["zero.us.txt"]
    assert query("SELECT status, rows_loaded FROM chute.files WHERE name = 'zero.us.txt'") == [("loaded", 0)]


def test_chute_load_refuses_to_infer_a_table_from_a_header_but_loads_it_into_an_existing_one(tmp_path, cli, query):
    write(tmp_path / "none.csv", "a,b\n")
    assert "the columns' types cannot be inferred" in cli("load", tmp_path / "none.csv", "--into", "t", expect=2).output
    write(tmp_path / "some.csv", "a,b\n1,x\n")
    cli("load", tmp_path / "some.csv", "--into", "t")
    text = " ".join(cli("load", tmp_path / "none.csv", "--into", "t").output.split())
    assert "1 loaded" in text and "loaded with 0 rows: none.csv." in text
    assert query("SELECT count(*) FROM t") == [(1,)]

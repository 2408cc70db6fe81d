"""Issue 23: `chute init DIR --from FILE` writes a chute.toml from a sample file (what was
detected, written out to read and edit) and copies the file into landing/; `chute run` on the
result loads it."""

from __future__ import annotations

import gzip
import json
import tomllib

from conftest import write

SAMPLE = """Shop Code;Day;Amount (EUR);Note
007;27/11/2024;12,5;NA
012;28/11/2024;NA;late
031;01/12/2024;3;NA
"""


def test_a_project_from_a_csv_file_loads_it(tmp_path, cli, query, db_url):
    sample = write(tmp_path / "Sales 2024.csv", SAMPLE.replace(",", "."))
    folder = tmp_path / "sales"
    result = cli("init", folder, "--from", sample)
    assert "table sales_2024 with 4 columns" in result.output
    config = tomllib.loads((folder / "chute.toml").read_text())
    assert config["landing"]["patterns"] == ["*.csv"]
    assert config["source"]["delimiter"] == ";" and "NA" in config["source"]["null_values"]
    assert config["source"]["formats"] == {"Day": "%d/%m/%Y"}
    assert config["source"]["columns"] == {"Shop Code": "text"}  # leading zeros: codes, not numbers
    assert config["source"]["rename"]["Amount (EUR)"] == "amount_eur"
    assert config["tables"]["sales_2024"]["columns"] == {
        "shop_code": "text", "day": "date", "amount_eur": "double", "note": "text"}
    assert (folder / "landing" / "Sales 2024.csv").read_bytes() == sample.read_bytes()
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["rows_loaded"] == 3 and summary["rows_rejected"] == 0
    assert query("SELECT shop_code, day::text, amount_eur, note FROM sales_2024 ORDER BY day") == [
        ("007", "2024-11-27", 12.5, None), ("012", "2024-11-28", None, "late"), ("031", "2024-12-01", 3.0, None)]


def test_a_project_from_a_compressed_json_file(tmp_path, cli, query, db_url):
    rows = [{"Name": "a", "Year": "Jan 1 1970", "Miles_per_Gallon": 18.0},
            {"Name": "b", "Year": "Jan 1 1971", "Miles_per_Gallon": None}]
    sample = write(tmp_path / "cars.json.gz", gzip.compress(json.dumps(rows).encode()))
    folder = tmp_path / "cars"
    cli("init", folder, "--from", sample, "--table", "cars")
    config = tomllib.loads((folder / "chute.toml").read_text())
    assert config["landing"]["patterns"] == ["*.json.gz"] and config["source"]["format"] == "json"
    assert config["source"]["formats"] == {"Year": "%B %d %Y"} and config["source"]["columns"] == {"Year": "date"}
    assert config["tables"]["cars"]["columns"] == {"name": "text", "year": "date", "miles_per_gallon": "double"}
    cli("run", "-p", folder)
    assert query("SELECT name, year::text, miles_per_gallon FROM cars ORDER BY 1") == [
        ("a", "1970-01-01", 18.0), ("b", "1971-01-01", None)]


def test_init_from_refuses_a_folder_in_use_and_a_bad_table_name(tmp_path, cli):
    sample = write(tmp_path / "a.csv", "id\n1\n")
    write(tmp_path / "used" / "x.txt", "")
    assert "is not empty" in cli("init", tmp_path / "used", "--from", sample, expect=2).output
    assert "a table name is" in cli("init", tmp_path / "new", "--from", sample, "--table", "1st", expect=2).output
    assert "--table goes with --from" in cli("init", tmp_path / "new", "--table", "t", expect=2).output

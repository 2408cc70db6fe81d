"""What people and scripts read: messages are one line in a pipe, help texts say what they mean."""

from __future__ import annotations

import subprocess
import sys


def test_a_long_message_stays_one_line_in_a_pipe(tmp_path):
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
    result = subprocess.run([sys.executable, "-m", "chute.cli", "init", str(folder), "--files", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    created = [line for line in result.stdout.splitlines() if line.startswith("Created ")]
    assert len(created) == 1 and created[0].endswith("processed/")  # the whole list on its one line
    assert len(created[0]) > 80  # longer than a terminal line, and not wrapped


def test_a_watermark_reads_as_text_not_as_a_python_dict():
    from chute.ledger.watermarks import describe

    assert describe({"updated_at": "2024-05-01T12:00:00+00:00", "order_id": 4711}) == \
        "updated_at 2024-05-01 12:00:00+00:00, order_id 4711"
    assert describe(None) == "none yet" and describe(42) == "42"


def config_error(data: dict) -> str:
    import pytest

    from chute.config.project import project_from_dict
    from chute.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        project_from_dict({"project": {"name": "p"}, **data}, __import__("pathlib").Path("."))
    return str(caught.value)


def test_an_unknown_key_suggests_the_nearest_one():
    assert "tabels: unknown key (did you mean 'tables'?)" in config_error({"tabels": {}})
    assert "landing.patern: unknown key (did you mean 'patterns'?)" in config_error({"landing": {"patern": "*.csv"}})


def test_a_wrong_type_says_what_was_expected_in_toml_words():
    message = config_error({"landing": {"patterns": 5}})
    assert 'landing.patterns: expected a list (in TOML: ["a", "b"]), got 5' in message
    assert "Input should be" not in message


def test_loose_booleans_are_refused():
    assert "source.header: expected true or false (without quotes), got 'no'" in config_error({"source": {"header": "no"}})


def test_an_unknown_step_names_the_ones_there_are():
    message = config_error({"pipeline": {"steps": [{"op": "dorp", "columns": ["a"]}]}})
    assert "unknown op 'dorp' (did you mean 'drop'?); one of: drop, hash" in message
    assert "Input tag" not in message


def test_a_single_pattern_is_a_list_of_one():
    from pathlib import Path

    from chute.config.project import project_from_dict

    project = project_from_dict({"project": {"name": "p"}, "landing": {"patterns": "*.txt"}}, Path("."))
    assert project.landing.patterns == ["*.txt"]


def test_rejects_count_rows_and_checks_apart_and_show_whole_file_names(tmp_path, cli, db_url):
    from conftest import write

    project = tmp_path / "codes"
    write(project / "chute.toml", '[project]\nname = "codes"\n\n[tables.rows]\ncolumns = { code = "text", n = "integer" }\n'
          'contract = { columns = { code = { regex = "^[a-z]{3}$", allowed = ["abc"] } } }\n')
    name = "a-very-long-file-name-from-a-partner-system-export-2024-05-01-part-0001.csv"
    write(project / "landing" / name, "code,n\nabc,1\nABCD,2\nXYZW,3\n")  # 2 bad rows, each failing 2 checks
    cli("run", "-p", project)
    status = " ".join(cli("status", "-p", project).output.split())
    assert "2 rejected rows in quarantine (4 failed checks)" in status
    listed = cli("rejects", "list", "-p", project, "--records").output
    assert f"{name}: 2 row(s), 4 failed check(s)" in listed  # the whole name, on its own line
    assert "record: XYZW,3" in " ".join(listed.split())

"""The command line: every command documents itself; reports come as JSON on request."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import STOCK_FILES, TOP_FILES

from chute.cli.main import main

COMMANDS = [["init"], ["run"], ["status"], ["forget"], ["load"], ["db"], ["db", "start"], ["db", "stop"], ["db", "status"], ["db", "list"], ["db", "prune"],
            ["db", "url"], ["watch"], ["dlq"], ["dlq", "list"], ["dlq", "retry"], ["dlq", "purge"],
            ["rejects"], ["rejects", "list"], ["rejects", "show"], ["rejects", "export"], ["replay"]]
COMMANDS += [["s3"], ["s3", "setup"], ["s3", "drain"], ["s3", "dead-letters"], ["s3", "redrive"]]
COMMANDS += [["ui"]]
COMMANDS += [["deploy"], ["deploy", "aws"], ["deploy", "rerun"]]
COMMANDS += [["extract"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(cli, command):
    text = cli(*command, "--help").output
    assert "Usage: " in text and len(text.splitlines()) > 3


def test_every_command_is_listed_here():
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name]
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])
    assert sorted(walk(main, [])) == sorted(COMMANDS)


def test_status_json(stocks, cli, db_url):
    cli("run", "-p", stocks)
    data = json.loads(cli("status", "-p", stocks, "--json").output)
    assert data["files"] == {"loaded": TOP_FILES} and data["runs"][0]["status"] == "succeeded"


def test_status_table(stocks, cli, db_url):
    cli("run", "-p", stocks)
    text = cli("status", "-p", stocks).output
    assert f"{TOP_FILES} loaded" in text and "succeeded" in text


def test_init_refuses_non_empty_folder(tmp_path, cli):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    assert "not empty" in cli("init", tmp_path / "x", expect=2).output


def test_bad_config_exit_2(tmp_path, cli):
    (tmp_path / "chute.toml").write_text("[project]\n")
    result = cli("run", "-p", tmp_path, expect=2)
    assert "project.name: required key is missing" in result.output


def test_names_and_values_that_look_like_markup_are_shown_as_they_are(tmp_path, cli, db_url):
    """A file named like Rich markup, and a regex with brackets, reach the terminal unchanged."""
    from conftest import write

    project = tmp_path / "markup"
    write(project / "chute.toml", '[project]\nname = "markup"\n\n[tables.rows]\n'
          'columns = { code = "text" }\ncontract = { columns = { code = { regex = "^[a-z]{3}$" } } }\n')
    write(project / "landing" / "[red]broken[/].csv", b"\x89PNG\r\n\x1a\n\x00\x00 not a CSV\n")
    write(project / "landing" / "codes.csv", "code\nabc\nABC\n")
    shown = cli("run", "-p", project, expect=1).output
    assert "[red]broken[/].csv" in shown
    rejects = cli("rejects", "list", "-p", project).output
    assert "[a-z]" in rejects  # Rich would have taken it for a style tag and dropped it


def test_the_chute_command_ends_with_its_status_and_all_its_output(stocks, db_url, tmp_path):
    """The console script (cli.entry) skips the interpreter's teardown with os._exit: the exit
    status and every line written must still come out, through a pipe too."""
    def chute(*args):
        return subprocess.run([sys.executable, "-m", "chute.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=300)

    loaded = chute("run", "-p", stocks, "--db", db_url, "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["files_loaded"] == TOP_FILES
    status = chute("status", "-p", stocks, "--db", db_url, "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["files"] == {"loaded": TOP_FILES}
    missing = chute("status", "-p", tmp_path / "nowhere")
    assert missing.returncode == 2 and "no chute.toml" in missing.stderr
    unknown = chute("bogus")
    assert unknown.returncode == 2 and "No such command 'bogus'" in unknown.stderr

"""One table of exit statuses (cli/_common.py, README "Exit status"), each shown by a command:

    0 all done; 1 a file or a message failed, or failed files still wait unchanged;
    2 the configuration or command line is refused; 3 the database is unavailable."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from conftest import write

from chute.cli._common import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE


def test_the_table_is_what_the_readme_says():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert (EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_UNAVAILABLE) == (0, 1, 2, 3)
    for status in ("`0`", "`1`", "`2`", "`3`"):
        assert status in readme[readme.index("Exit status"):][:800]


def broken(stocks):
    """The stocks project with one listed company whose file is broken."""
    top = (stocks / "reference" / "top_companies.txt").read_text().strip()
    write(stocks / "reference" / "top_companies.txt", top + ", 'broken.us.csv'")
    write(stocks / "landing" / "broken.us.csv", "Date,Open\n2017-01-02,1,2,3\n")
    return stocks


def test_old_failures_keep_run_at_1_until_fixed(stocks, cli, db_url):
    project = broken(stocks)
    cli("run", "-p", project, expect=EXIT_FAILED)
    again = cli("run", "-p", project, expect=EXIT_FAILED).output  # nothing new, the broken file still waits
    assert "failed earlier and are unchanged" in " ".join(again.split())
    summary = json.loads(cli("run", "-p", project, "--json", "--ignore-old-failures", expect=EXIT_OK).stdout)
    assert summary["files_failed"] == 0 and summary["still_failed"] == ["broken.us.csv"]
    (project / "landing" / "broken.us.csv").unlink()  # gone from the landing zone: nothing waits any more
    cli("run", "-p", project, expect=EXIT_OK)


def test_a_database_that_cannot_be_reached_is_3(stocks, cli):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("run", "-p", stocks, "--db", f"postgresql://chute@127.0.0.1:{port}/x", "--json",
                 expect=EXIT_UNAVAILABLE)
    assert json.loads(result.stdout)["exit_status"] == EXIT_UNAVAILABLE


def test_a_wrong_configuration_is_2(tmp_path, cli):
    write(tmp_path / "chute.toml", "[project]\nname = 'x'\n[landing]\npath = 'landing'\n")
    cli("run", "-p", tmp_path, "--db", "postgresql://chute@127.0.0.1:1/x", expect=EXIT_ERROR)


def test_ui_on_a_taken_port_is_2_with_a_clear_message(stocks, db_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "chute.cli", "ui", "-p", str(stocks), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_ERROR, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr

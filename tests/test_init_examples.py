"""`chute init` for every example: exit 0, the files it names exist, and the next step it prints
is a command that works for that example."""

from __future__ import annotations

import json

import psycopg
import pytest

from chute.examples.scaffold import EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES)
def test_init_every_example(example, tmp_path, cli, db_url, pg_cluster):
    folder = tmp_path / example
    try:
        out = cli("init", folder, "--example", example, "--files", "2").output
    finally:
        if example == "ingest":  # it made its source database on the server
            with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "ingest_source" WITH (FORCE)')
    assert "Traceback" not in out and "Error" not in out
    assert f"Created {folder} from the {example} example" in " ".join(out.split())
    next_line = next(line for line in out.splitlines() if line.startswith("Next: "))
    if example == "retail":  # three stage projects, no chute.toml at the top
        assert not (folder / "chute.toml").exists()
        for stage in ("branches", "salespersons", "sales"):
            assert (folder / stage / "chute.toml").is_file()
            assert f"-p {folder}/{stage}" in " ".join(out.split())
        assert f"-p {folder}/branches" in next_line
    else:
        assert (folder / "chute.toml").is_file()
        assert f"--project {folder}" in next_line
    if example not in ("retail", "ingest"):  # these generate no landing files: their data comes by extraction
        assert "Generated 2 files" in out and any((folder / "landing").rglob("*"))


@pytest.mark.parametrize("example", ["stocks", "stream"])
def test_init_json_reports_files_and_rows(example, tmp_path, cli):
    info = json.loads(cli("init", tmp_path / example, "--example", example, "--files", "2", "--json").output)
    assert info["data"]["files"] == 2 and info["data"]["rows"] > 0
    assert info["next"] == f"chute run --project {tmp_path / example}"


def test_the_retail_api_does_not_take_the_dashboard_port():
    import inspect

    from chute.cli.ui import ui
    from chute.examples.retail.api import RetailServer

    dashboard = next(p.default for p in ui.params if p.name == "port")
    api = inspect.signature(RetailServer.__init__).parameters["port"].default
    assert api != dashboard

"""chute.toml validation: errors name the file, the key and what is expected."""

from __future__ import annotations

import pytest

from chute.errors import ConfigError
from chute.config.project import load_project

GOOD = """
[project]
name = "p"
[tables.t]
mode = "merge"
primary_key = ["id"]
columns = { id = "bigint", price = "numeric(10,2)", name = "varchar(20)" }
"""


def make(tmp_path, text: str):
    (tmp_path / "chute.toml").write_text(text)
    return load_project(tmp_path)


def test_good_config_has_typed_tables(tmp_path):
    project = make(tmp_path, GOOD)
    types = project.tables["t"].column_types()
    assert types["price"].sql == "numeric(10,2)" and types["name"].sql == "varchar(20)"
    assert project.landing_path == tmp_path / "landing"


@pytest.mark.parametrize("text, message", [
    (GOOD.replace('mode = "merge"', 'mode = "upsert"'), "tables.t.mode: Input should be 'append', 'replace' or 'merge'"),
    (GOOD.replace('primary_key = ["id"]', 'primary_key = ["nope"]'), "primary_key names undeclared columns: nope"),
    (GOOD.replace('primary_key = ["id"]', ''), "mode = 'merge' needs a primary_key"),
    (GOOD.replace('"bigint"', '"bigint2"'), "column 'id': unknown column type 'bigint2'"),
    (GOOD + "\n[landing]\npaths = 'x'\n", "landing.paths: unknown key"),
    (GOOD + "\n[landing]\npatterns = []\n", "landing.patterns: List should have at least 1 item"),
    (GOOD.replace('name = "p"', ''), "project.name: required key is missing"),
    (GOOD + '\n[source]\nencoding = "klingon"\n', "unknown encoding 'klingon'"),
    ("[project\nname=1", "not valid TOML"),
])
def test_bad_config_messages(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        make(tmp_path, text)
    assert message in str(info.value) and "chute.toml" in str(info.value)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="no chute.toml in .* \\(create a project with `chute init`\\)"):
        load_project(tmp_path)


def test_database_url_from_env(tmp_path, monkeypatch):
    project = make(tmp_path, GOOD + '\n[database]\nurl = "env:MY_DB"\n')
    with pytest.raises(ConfigError, match=r"\$MY_DB is not set"):
        project.configured_database_url()
    monkeypatch.setenv("MY_DB", "postgresql://x@h/db")
    assert project.configured_database_url() == "postgresql://x@h/db"

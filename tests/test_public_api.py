"""The public surface: what `import chute` offers, and every CLI command documented and helped.

Changing one of these lists is an API change: say so in the commit and in docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import chute
import chute.quality
import chute.transforms
from chute.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"

CHUTE = ["ChuteError", "ConfigError", "DatabaseError", "FileError", "Node", "Pipeline", "PipelineError", "Project",
         "ReadError", "TransformError", "__version__", "file_filter", "load_project", "node"]
TRANSFORMS = ["add_key", "as_node", "cast", "dedup", "derive", "drop_columns", "explode_list", "extract",
              "hash_columns", "mask_columns", "rename", "split_dimension", "stable_id", "surrogate_ids", "where"]
QUALITY = ["ColumnRules", "Contract", "Rule"]


@pytest.mark.parametrize("module, names", [(chute, CHUTE), (chute.transforms, TRANSFORMS), (chute.quality, QUALITY)],
                         ids=["chute", "chute.transforms", "chute.quality"])
def test_all_is_pinned_and_every_name_resolves(module, names):
    assert sorted(module.__all__) == sorted(names)
    for name in names:
        assert getattr(module, name) is not None, name


def test_the_lazy_api_loads_nothing_heavy_until_asked():
    """`import chute` alone imports no polars or pydantic (chute --version stays cheap)."""
    code = "import sys, chute; print('polars' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        chute.nothing_here  # noqa: B018


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under `group`: ('run',), ('db', 'start'), ..."""
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += commands(command, path)
    return found


def documented() -> set[tuple[str, ...]]:
    """Command paths named in the README's command table: `chute db start|stop|status|url ...`."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| command | what it does |"):]
    paths = set()
    for row in table.splitlines()[2:]:
        if not row.startswith("| `chute "):
            break
        words = row.split("`")[1].replace("\\|", "|").split()[1:]
        first = words[0]
        paths.add((first,))
        if len(words) > 1 and re.fullmatch(r"[a-z-]+(\|[a-z-]+)*", words[1]):
            paths |= {(first, sub) for sub in words[1].split("|")}
    return paths


def test_every_cli_command_is_in_the_readme_table():
    table = documented()
    missing = [" ".join(path) for path in commands(main) if path not in table]
    assert missing == []


def test_every_command_in_the_readme_table_exists():
    known = set(commands(main))
    stale = [" ".join(path) for path in documented() if path not in known]
    assert stale == []


@pytest.mark.parametrize("path", commands(main), ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("Usage: ") and " ".join(path) in result.output.splitlines()[0]
    assert len(result.output.splitlines()) > 3  # a usage line, a description and options

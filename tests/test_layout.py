"""The layout's rules (docs/architecture.md), checked by parsing src/chute's imports.

- no import cycle between modules (function-level imports count: a cycle hidden in a function
  is still a cycle);
- no private name (`_x`) imported from another module;
- a lower folder never imports a higher one, in the order of FOLDERS;
- only the modules of LOOSE sit at the top of src/chute;
- every package's __init__ has a docstring: its map.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "chute"

# Lowest first: a folder may import its own modules and those of the folders before it.
FOLDERS = ["config", "sources", "formats", "pipeline", "transforms", "db", "ledger", "quality", "load",
           "extract", "notify", "chain", "run", "watch", "ui", "deploy", "examples", "cli"]
LOOSE = {"__init__", "errors", "coltypes", "retry"}  # below every folder


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (a submodule when `from pkg import submodule`)
    names: tuple[str, ...]
    line: int
    type_checking: bool  # under `if TYPE_CHECKING:` (never executed)


def modules(root: Path = SRC) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path = SRC) -> list[Import]:
    mods = modules(root)
    result = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    name = ".".join(base + ([node.module] if node.module else []))
                else:
                    name = node.module or ""
                if name != "chute" and not name.startswith("chute."):
                    continue
                for alias in node.names:
                    sub = f"{name}.{alias.name}"
                    target = sub if sub in mods else name
                    result.append(Import(mod, target, (alias.name,), node.lineno, id(node) in guarded))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("chute"):
                        result.append(Import(mod, alias.name, (), node.lineno, id(node) in guarded))
    return result


def folder_rank(module: str) -> int:
    """-1 for the loose modules at the top, else the folder's place in FOLDERS."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in LOOSE:
        return -1
    return FOLDERS.index(parts[1])


def test_the_rules_see_the_imports():
    """The parser finds imports at module level, in functions and under TYPE_CHECKING."""
    found = imports()
    assert len(found) > 300
    assert any(i.type_checking for i in found)
    assert any(i.source == "chute.run.runner" and i.target == "chute.ledger.files" for i in found)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for i in imports():
        if not i.type_checking and i.target != i.source:
            graph.setdefault(i.source, set()).add(i.target)
    # A package's __init__ is run by importing any of its modules: `chute` itself only holds
    # the lazy public API (importlib, by name), so it is left out as a target.
    for deps in graph.values():
        deps.discard("chute")
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_no_private_name_imported_from_another_module():
    private = [f"{i.source}:{i.line} imports {name} from {i.target}" for i in imports()
               for name in i.names if name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_a_lower_folder_never_imports_a_higher_one():
    upward = []
    for i in imports():
        # The root package is the lazy public API over every folder, and holds __version__.
        if "chute" in (i.source, i.target):
            continue
        if folder_rank(i.target) > folder_rank(i.source):
            upward.append(f"{i.source}:{i.line} imports {i.target}")
    assert upward == []


def test_only_the_shared_modules_are_loose_at_the_top():
    loose = {p.stem for p in SRC.glob("*.py")}
    assert loose == LOOSE
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(FOLDERS)


def test_every_package_init_has_a_docstring():
    missing = [str(p.relative_to(SRC)) for p in SRC.rglob("__init__.py")
               if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert missing == []


def test_the_checks_fail_on_a_cycle_an_upward_import_and_a_private_name(tmp_path):
    """The rules on a small made-up package: each one is caught."""
    pkg = tmp_path / "chute"
    for folder in ("config", "run"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text('"""map"""\n')
    (pkg / "__init__.py").write_text('"""api"""\n')
    (pkg / "config" / "a.py").write_text("from chute.run.b import thing\n")
    (pkg / "run" / "b.py").write_text("def f():\n    from chute.config.a import _hidden\n")
    found = imports(pkg)
    upward = [i for i in found if folder_rank(i.target) > folder_rank(i.source)]
    assert [(i.source, i.target) for i in upward] == [("chute.config.a", "chute.run.b")]
    assert any(n.startswith("_") for i in found for n in i.names)
    graph = {"chute.config.a": {"chute.run.b"}, "chute.run.b": {"chute.config.a"}}
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())

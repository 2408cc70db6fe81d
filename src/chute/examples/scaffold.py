"""`chute init`: a new project folder from one of the bundled examples."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from chute.errors import ConfigError

# kedro: the workforce job as a Kedro project (src/, conf/ beside chute.toml); needs chute[kedro].
EXAMPLES = ("stocks", "cafe", "workforce", "stream", "ingest", "retail", "kedro")
# A few seconds of generating each; ingest: days of orders in its source database; retail: writes
# its three stage folders (its data comes from its API).
DEFAULT_FILES = {"stocks": 300, "cafe": 40, "workforce": 4, "stream": 20, "ingest": 14, "retail": 1, "kedro": 4}
# Folders made beside chute.toml. retail has no chute.toml at its top: each stage folder is a
# project whose landing zone the extraction creates, so it gets none.
FOLDERS = {"retail": (), "kedro": ("landing", "data/01_raw", "conf/local")}
DEFAULT_FOLDERS = ("landing", "reference", "processed")


def create_project(folder: Path, example: str, *, files: int | None = None, seed: int = 42,
                   top: int | None = None) -> dict:
    if example not in EXAMPLES:
        raise ConfigError(f"unknown example {example!r}; choose one of: {', '.join(EXAMPLES)}")
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} exists and is not empty; choose a new folder")
    template = resources.files("chute") / "examples" / example
    folder.mkdir(parents=True, exist_ok=True)
    created = []
    for item in sorted(template.iterdir(), key=lambda p: p.name):
        if item.is_file() and not item.name.startswith((".", "__")):
            (folder / item.name).write_bytes(item.read_bytes())
            created.append(item.name)
        elif item.is_dir() and not item.name.startswith((".", "__")):  # a Kedro project's src/ and conf/
            created += _copy_tree(item, folder / item.name, item.name)
    for sub in FOLDERS.get(example, DEFAULT_FOLDERS):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        created.append(f"{sub}/")
    files = DEFAULT_FILES[example] if files is None else files
    data = _generate(folder, files, seed, top) if files else None
    return {"folder": str(folder), "example": example, "created": created, "data": data,
            "next": next_steps(folder, example)}


def _copy_tree(source, target: Path, shown: str) -> list[str]:
    """A folder of an example, whole (a package's __init__.py too), without byte-code."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in sorted(source.iterdir(), key=lambda p: p.name):
        if item.name == "__pycache__" or item.name.endswith(".pyc"):
            continue
        if item.is_dir():
            copied += _copy_tree(item, target / item.name, f"{shown}/{item.name}")
        else:
            (target / item.name).write_bytes(item.read_bytes())
            copied.append(f"{shown}/{item.name}")
    return copied


def next_steps(folder: Path, example: str) -> str:
    """What to type after `chute init` (the retail example's stages are projects of their own)."""
    if example == "retail":
        return f"chute extract -p {folder}/branches (after starting its API: see above)"
    if example == "ingest":
        return f"chute extract --project {folder}, then chute run --project {folder}"
    return f"chute run --project {folder}"


def _generate(folder: Path, files: int, seed: int, top: int | None) -> dict:
    """Run the example's own generator (copied into the project, so users can run it too)."""
    spec = importlib.util.spec_from_file_location("chute_example_generate", folder / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.generate(folder, files=files, seed=seed, top=top)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in summary.items()}

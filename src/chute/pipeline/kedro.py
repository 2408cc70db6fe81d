"""A Kedro project's pipeline, run as chute nodes.

    [pipeline]
    input = "companies"                                      # the Kedro dataset the landing data binds to
    kedro = "my_package.pipeline_registry:__default__"       # or a [pipeline.kedro] table

The project is the one `kedro new` makes (pyproject.toml with [tool.kedro], conf/, src/), read
the way `kedro run` reads it: its settings.py, its pipeline registry, its catalog and parameters
(conf/base, then the environment). What changes is who feeds and who stores:

- every Kedro node becomes one chute node with the same name, inputs and outputs (a transcoded
  name, `x@pandas`, is the dataset `x`, as Kedro wires it);
- the landing files feed the dataset named by [pipeline] input, one batch of rows at a time;
- the pipeline's other free inputs are loaded from the Kedro catalog once per run (`params:x` and
  `parameters` too; chute's [params] override Kedro's parameters, as `kedro run --params` does);
- datasets between nodes stay in memory (staged Parquet on AWS) and are not saved to their
  catalog entries; the outputs named like a [tables.*] entry load into PostgreSQL exactly once.

Frames: a node gets pandas DataFrames ([pipeline.kedro] frames = "pandas", the default, or a
`@pandas` transcoding) or polars ones; what it returns, pandas or polars, travels on as polars,
so a run here and a run on AWS (Parquet between Lambda tasks) see the same values.

kedro is an optional dependency (`pip install 'chute[kedro]'`): it is imported inside the
functions here, so chute imports and starts without it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from chute.config.project import KedroPipeline, Project
from chute.errors import ConfigError, PipelineError
from chute.pipeline.graph import Node

FRAME_KINDS = ("pandas", "polars")
# What a deployment image needs beside chute's own dependencies, when installed here.
IMAGE_PACKAGES = ("kedro", "kedro-datasets", "pandas")


def plain_name(name: str) -> str:
    """A Kedro dataset name without its transcoding (`x@pandas` -> `x`): the name Kedro wires by."""
    return name.split("@", 1)[0]


@contextlib.contextmanager
def _host_logging() -> Iterator[None]:
    """Importing kedro.framework.project configures logging for a `kedro` CLI (a handler on the
    root logger that prints to stdout, which would mix into `chute run --json`). chute is the host
    here: its logging is put back as it was."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.root.manager.disable
    logging.disable(logging.INFO)  # its "Using ... as logging configuration", printed while importing
    try:
        yield
    finally:
        logging.disable(saved[2])
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        # Kedro logs every node it runs at INFO, and a failing node at ERROR: chute reports the
        # failure against its file (and node timings) itself.
        logging.getLogger("kedro").setLevel(logging.WARNING)
        logging.getLogger("kedro.pipeline.node").setLevel(logging.CRITICAL)


def _require_kedro() -> None:
    try:
        import kedro  # noqa: F401  (optional dependency: pip install 'chute[kedro]')
    except ImportError:
        raise ConfigError("[pipeline] kedro needs the kedro package: pip install 'chute[kedro]'") from None


class KedroProject:
    """One Kedro project, bootstrapped as `kedro run` does (its src/ first on sys.path)."""

    def __init__(self, config: KedroPipeline, chute_root: Path, params: Mapping[str, Any]):
        _require_kedro()
        self.config = config
        self.path = (chute_root / config.project).resolve()
        self.params = dict(params)
        with _host_logging():
            self.package, self.source_dir = self._bootstrap()

    def _bootstrap(self) -> tuple[str, Path]:
        from kedro.framework.startup import bootstrap_project

        if not (self.path / "pyproject.toml").is_file():
            raise ConfigError(f"[pipeline] kedro: {self.path} is not a Kedro project (no pyproject.toml with a "
                              "[tool.kedro] section; `kedro new` makes one)")
        try:
            found = bootstrap_project(self.path)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"[pipeline] kedro: {self.path}: {exc}") from None
        source = Path(found.source_dir).resolve()
        # This project's package, freshly imported: another project of the same package name may
        # have been loaded before (tests, `chute watch` after an edit).
        for name in [m for m in sys.modules if m == found.package_name or m.startswith(found.package_name + ".")]:
            del sys.modules[name]
        if str(source) in sys.path:
            sys.path.remove(str(source))
        sys.path.insert(0, str(source))
        importlib.invalidate_caches()
        return found.package_name, source

    # -- the pipeline ------------------------------------------------------------------------------
    def pipeline(self) -> Any:
        from kedro.pipeline import Pipeline as KedroPipelineObject

        spec = self.config.pipeline
        module_name, _, name = spec.rpartition(":")
        module_name = module_name or f"{self.package}.pipeline_registry"
        with _host_logging():
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PipelineError(f"[pipeline] kedro = {spec!r}: import {module_name} failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
            try:
                if hasattr(module, "register_pipelines"):
                    registry = module.register_pipelines()
                    if name not in registry:
                        raise PipelineError(f"[pipeline] kedro = {spec!r}: {module_name}.register_pipelines() has "
                                            f"no pipeline {name!r} (it has: {', '.join(sorted(registry))})")
                    found = registry[name]
                else:
                    found = getattr(module, name, None)
                    if callable(found) and not isinstance(found, KedroPipelineObject):
                        found = found()  # a modular pipeline's create_pipeline
            except PipelineError:
                raise
            except Exception as exc:
                raise PipelineError(f"[pipeline] kedro = {spec!r}: building the pipeline failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(found, KedroPipelineObject):
            raise PipelineError(f"[pipeline] kedro = {spec!r}: {module_name} has no register_pipelines() and no "
                                f"Pipeline (or function returning one) named {name!r}")
        return found

    # -- the catalog -------------------------------------------------------------------------------
    @cached_property
    def context(self) -> Any:
        """Kedro's context with the project's settings and its own hooks (settings.HOOKS); installed
        plugins' hooks are left out (kedro-telemetry would send a usage event on every run)."""
        from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks
        from kedro.framework.project import settings

        with _host_logging():
            hooks = _create_hook_manager()
            _register_hooks(hooks, settings.HOOKS)
            conf = self.path / settings.CONF_SOURCE
            env = self.config.env
            args = dict(settings.CONFIG_LOADER_ARGS)
            if env is None and not (conf / args.get("default_run_env", "local")).is_dir():
                env = args.get("base_env", "base")  # a deployment image has no conf/local: base alone
            loader = settings.CONFIG_LOADER_CLASS(conf_source=str(conf), env=env, runtime_params=self.params, **args)
            return settings.CONTEXT_CLASS(package_name=self.package, project_path=self.path, config_loader=loader,
                                          hook_manager=hooks, env=env, runtime_params=self.params)

    @cached_property
    def catalog(self) -> Any:
        with _host_logging():
            try:
                return self.context.catalog
            except Exception as exc:
                raise ConfigError(f"[pipeline] kedro: the catalog of {self.path} cannot be built: "
                                  f"{type(exc).__name__}: {exc}") from exc

    def load(self, dataset: str) -> Any:
        with _host_logging():
            return self.catalog.load(dataset)

    def catalog_config(self) -> dict[str, Any]:
        """The catalog entries as written (relative paths as they are)."""
        with _host_logging():
            return dict(self.context.config_loader["catalog"])


# -- nodes -----------------------------------------------------------------------------------------
def _is_pandas_frame(value: Any) -> bool:
    pandas = sys.modules.get("pandas")  # never imported here for a project that does not use it
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _for_node(value: Any, kind: str) -> Any:
    """A value as the Kedro node takes it: frames as pandas or polars."""
    if isinstance(value, pl.LazyFrame):
        value = value.collect()
    if kind == "pandas" and isinstance(value, pl.DataFrame):
        return value.to_pandas()
    if kind == "polars" and _is_pandas_frame(value):
        return pl.from_pandas(value)
    return value


def _for_chute(value: Any) -> Any:
    """What a node returned, as chute carries it on: a pandas frame becomes polars."""
    return pl.from_pandas(value) if _is_pandas_frame(value) else value


def _kind(name: str, default: str) -> str:
    suffix = name.partition("@")[2]
    return suffix if suffix in FRAME_KINDS else default


def as_chute_node(kedro_node: Any, frames: str, carried: set[str]) -> Node:
    """One Kedro node as a chute node: the same name, inputs and outputs (transcoding dropped).

    The datasets chute carries (`carried`: the landing input and the nodes' outputs) reach the
    node as `frames` (or as their transcoding says); what the catalog loads reaches it as the
    catalog entry's own type made it."""
    if not kedro_node.outputs:
        raise PipelineError(f"Kedro node {kedro_node.name} has no outputs; chute runs nodes for what they "
                            "output (a table, or a dataset another node takes)")
    inputs = list(kedro_node.inputs)
    outputs = [plain_name(o) for o in kedro_node.outputs]

    def run(*values: Any) -> Any:
        given = {name: _for_node(value, _kind(name, frames)) if plain_name(name) in carried else value
                 for name, value in zip(inputs, values)}
        result = {plain_name(k): _for_chute(v) for k, v in kedro_node.run(given).items()}
        return result[outputs[0]] if len(outputs) == 1 else result

    run.__name__ = run.__qualname__ = kedro_node.name
    return Node(run, kedro_node.name, tuple(plain_name(i) for i in inputs), tuple(outputs))


def kedro_nodes(project: Project, provided: Iterable[str]) -> list[Node]:
    """The Kedro pipeline of [pipeline] kedro as chute nodes, and a once-per-run node loading each
    of its free inputs from the Kedro catalog (the landing input and chute's references and params
    excepted: chute provides those)."""
    config = project.pipeline.kedro
    assert config is not None
    kedro = KedroProject(config, project.root, project.params)
    pipeline = kedro.pipeline()
    source = project.pipeline.input
    produced = {plain_name(o) for n in pipeline.nodes for o in n.outputs}
    nodes = [as_chute_node(n, config.frames, {source, *produced}) for n in pipeline.nodes]
    free = {plain_name(i) for i in pipeline.inputs()}
    if source not in free and not project.pipeline.module and not project.pipeline.steps:
        raise PipelineError(f"[pipeline] input = {source!r}: no node of the Kedro pipeline takes that dataset, so the "
                            f"landing files would feed nothing (its free inputs: {', '.join(sorted(free))})")
    skip = {source, *provided, *produced}
    loaders: dict[str, str] = {}  # chute name -> catalog name
    for name in sorted(pipeline.inputs()):
        if plain_name(name) in skip or plain_name(name) in loaders:
            continue
        if name in kedro.catalog:
            loaders[plain_name(name)] = name
    for chute_name, catalog_name in loaders.items():
        def load(dataset: str = catalog_name) -> Any:
            return kedro.load(dataset)

        nodes.append(Node(load, f"catalog.load({catalog_name})", (), (chute_name,)))
    return nodes


# -- what a deployment image needs ---------------------------------------------------------------
def image_files(project: Project) -> list[Path]:
    """The Kedro project's files a container needs to run it as it runs here: pyproject.toml, the
    package's source, conf/base (and conf/ENV when [pipeline.kedro] env is set; conf/local holds
    credentials by Kedro's convention and is never copied), and the local files of the catalog
    entries the pipeline loads."""
    config = project.pipeline.kedro
    if config is None:
        return []
    kedro = KedroProject(config, project.root, project.params)
    files = [kedro.path / "pyproject.toml"]
    package = kedro.source_dir / kedro.package
    files += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and p.suffix not in (".pyc", ".pyo"))
    for env in ("base", config.env):
        if env and env != "local" and (kedro.path / "conf" / env).is_dir():
            files += sorted(p for p in (kedro.path / "conf" / env).rglob("*") if p.is_file())
    entries = kedro.catalog_config()
    loaded = {n.outputs[0] for n in kedro_nodes(project, [*project.references, *project.params])
              if n.name.startswith("catalog.load(")}
    for name, entry in entries.items():
        filepath = entry.get("filepath") if isinstance(entry, dict) else None
        if plain_name(name) in loaded and isinstance(filepath, str) and "://" not in filepath:
            path = (kedro.path / filepath).resolve()
            if path.is_file():
                files.append(path)
    return list(dict.fromkeys(files))


def image_requirements(project: Project) -> list[str]:
    """kedro and its usual companions, pinned to what runs here, for a project with [pipeline] kedro."""
    if project.pipeline.kedro is None:
        return []
    pins = []
    for name in IMAGE_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins

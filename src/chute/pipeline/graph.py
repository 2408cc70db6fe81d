"""Nodes and the graph they form.

A node is a plain function. Its inputs are named by its parameters (or `inputs=`), its
outputs by its name (or `outputs=`). A name resolves to, in this order: the dataset the
landing files feed (one batch of rows at a time), the output of another node, a reference
file (a Path), or a parameter from chute.toml.

Nodes that do not depend on the landing data (for example, parsing a reference file) run
once per run; the rest run once per batch of rows.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import polars as pl

from chute.errors import PipelineError, TransformError


@dataclass(frozen=True)
class Node:
    func: Callable[..., Any]
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    file_filter: bool = False  # decides from a file's name whether the file is read at all

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # nodes stay callable in tests
        return self.func(*args, **kwargs)


def node(
    func: Callable[..., Any] | None = None,
    *,
    inputs: str | Iterable[str] | None = None,
    outputs: str | Iterable[str] | None = None,
    name: str | None = None,
) -> Any:
    """Mark a function as a pipeline node: `@node` or `@node(outputs="table")`."""

    def wrap(f: Callable[..., Any]) -> Node:
        ins = _names(inputs) if inputs is not None else tuple(inspect.signature(f).parameters)
        outs = _names(outputs) if outputs is not None else (f.__name__,)
        if not outs:
            raise PipelineError(f"node {f.__name__}: declare at least one output")
        return Node(f, name or f.__name__, ins, outs)

    return wrap(func) if func is not None else wrap


def file_filter(func: Callable[..., bool]) -> Node:
    """Mark a function that says, from a file's name, whether the pipeline wants the file.

    Its first parameter receives the file name (relative to the landing zone); the others
    resolve like node inputs, from references, params and once-per-run nodes. Files it
    refuses are never read, and are not settled in the ledger: they are asked about again
    on the next run, so a changed reference (say, a new list of companies) takes effect.
    """
    params = tuple(inspect.signature(func).parameters)
    if not params:
        raise PipelineError(f"file filter {func.__name__}: its first parameter must take the file name")
    return Node(func, func.__name__, params[1:], (), file_filter=True)


def _names(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass
class Pipeline:
    nodes: list[Node] = field(default_factory=list)
    contracts: list[Any] = field(default_factory=list)  # chute.quality.Contract objects of the module

    def plan(self, source: str, provided: Iterable[str], targets: Iterable[str]) -> "Plan":
        """Check the wiring and order the nodes. `provided` are references and params."""
        provided = set(provided)
        filters = [n for n in self.nodes if n.file_filter]
        nodes = [n for n in self.nodes if not n.file_filter]
        producers: dict[str, Node] = {}
        for n in nodes:
            for out in n.outputs:
                if out in producers:
                    raise PipelineError(f"dataset {out!r} is produced by two nodes: {producers[out].name} and {n.name}")
                if out == source:
                    raise PipelineError(f"node {n.name} outputs {out!r}, which is the name of the landing input")
                producers[out] = n
        for n in nodes + filters:
            for name in n.inputs:
                if name != source and name not in producers and name not in provided:
                    known = sorted({source, *producers, *provided})
                    raise PipelineError(
                        f"node {n.name} needs input {name!r}, which no node produces and is not the landing "
                        f"input, a reference or a param (known: {', '.join(known)})"
                    )
        for table in targets:
            if table != source and table not in producers:
                raise PipelineError(f"table {table!r} is configured but no node outputs a dataset of that name")

        graph = {n.name: {producers[i].name for i in n.inputs if i in producers} for n in nodes}
        try:
            order = list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            raise PipelineError(f"the nodes form a cycle: {' -> '.join(exc.args[1])}") from None
        by_name = {n.name: n for n in nodes}
        if len(by_name) != len(nodes):
            raise PipelineError("two nodes share a name; give one of them name=...")

        # A node is per-batch when it reads the landing input, directly or through another node.
        per_batch: set[str] = set()
        for name in order:
            n = by_name[name]
            if any(i == source or (i in producers and producers[i].name in per_batch) for i in n.inputs):
                per_batch.add(name)
        static = [by_name[n] for n in order if n not in per_batch]
        batch = [by_name[n] for n in order if n in per_batch]
        for f in filters:
            if source in f.inputs or any(i in producers and producers[i].name in per_batch for i in f.inputs):
                raise PipelineError(f"file filter {f.name} may only use references, params and once-per-run nodes")
        return Plan(source, static, batch, filters, list(self.contracts))


@dataclass
class Plan:
    source: str
    static: list[Node]
    batch: list[Node]
    filters: list[Node] = field(default_factory=list)
    contracts: list[Any] = field(default_factory=list)

    def wants(self, file_name: str, static_values: Mapping[str, Any]) -> str | None:
        """None if every file filter accepts the file, else the name of the filter that refused it."""
        for f in self.filters:
            try:
                accepted = f.func(file_name, *(static_values[i] for i in f.inputs))
            except Exception as exc:
                raise PipelineError(f"file filter {f.name} failed on {file_name!r}: {type(exc).__name__}: {exc}") from exc
            if not accepted:
                return f.name
        return None

    def run_static(self, provided: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(provided)
        for n in self.static:
            run_node(n, values, timings=None)
        return values

    def run_batch(self, frame: Any, static_values: Mapping[str, Any], timings: dict[str, float]) -> dict[str, Any]:
        values = {**static_values, self.source: frame}
        for n in self.batch:
            run_node(n, values, timings)
        return values


def run_node(n: Node, values: dict[str, Any], timings: dict[str, float] | None) -> None:
    started = time.perf_counter()
    try:
        result = n.func(*(values[i] for i in n.inputs))
    except TransformError:
        raise
    except Exception as exc:  # a user's node failed: report it against the file, keep going
        raise TransformError(f"node {n.name} failed: {type(exc).__name__}: {exc}") from exc
    if timings is not None:
        timings[n.name] = timings.get(n.name, 0.0) + time.perf_counter() - started
    if len(n.outputs) == 1:
        values[n.outputs[0]] = result
        return
    if isinstance(result, Mapping):
        missing = [o for o in n.outputs if o not in result]
        if missing:
            raise TransformError(f"node {n.name} returned no value for {', '.join(missing)}")
        values.update({o: result[o] for o in n.outputs})
    elif isinstance(result, tuple) and len(result) == len(n.outputs):
        values.update(zip(n.outputs, result))
    else:
        raise TransformError(f"node {n.name} must return a tuple or dict of {len(n.outputs)} values")


def load_pipeline(module_path: Path) -> Pipeline:
    """Import a pipeline file and collect its nodes (or its `pipeline` object, if it defines one)."""
    if not module_path.is_file():
        raise PipelineError(f"pipeline module {module_path} does not exist")
    module_name = f"chute_pipeline_{abs(hash(str(module_path)))}"
    spec = importlib.util.spec_from_file_location(module_name, module_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PipelineError(f"{module_path}: import failed: {type(exc).__name__}: {exc}") from exc
    from chute.config.contracts import Contract

    contracts = [v for v in vars(module).values() if isinstance(v, Contract)]
    defined = getattr(module, "pipeline", None)
    if isinstance(defined, Pipeline):
        defined.contracts = [*defined.contracts, *(c for c in contracts
                                                   if not any(c is d for d in defined.contracts))]
        return defined
    nodes = [v for v in vars(module).values() if isinstance(v, Node)]
    if not nodes:
        raise PipelineError(f"{module_path} defines no @node functions")
    return Pipeline(nodes, contracts)


def as_frame(value: Any, table: str) -> pl.DataFrame:
    """A node's output for a table as a DataFrame (a LazyFrame is collected)."""
    if isinstance(value, pl.LazyFrame):
        return value.collect()
    if isinstance(value, pl.DataFrame):
        return value
    pandas = sys.modules.get("pandas")  # a pandas frame is taken too (never imported here otherwise)
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return pl.from_pandas(value)
    raise TransformError(f"dataset {table!r} must be a polars or pandas DataFrame, got {type(value).__name__}")

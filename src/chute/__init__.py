"""chute: files land, a pipeline of Python nodes shapes them, PostgreSQL gets them exactly once."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names, imported on first use (PEP 562): `chute --version` or `chute db url`
# then never load polars and pydantic models they do not need.
_WHERE = {
    "ChuteError": "errors", "ConfigError": "errors", "DatabaseError": "errors", "FileError": "errors",
    "PipelineError": "errors", "ReadError": "errors", "TransformError": "errors",
    "Node": "pipeline.graph", "Pipeline": "pipeline.graph", "file_filter": "pipeline.graph", "node": "pipeline.graph",
    "Project": "config.project", "load_project": "config.project",
}

__all__ = [*_WHERE, "__version__"]

if TYPE_CHECKING:
    from chute.errors import ChuteError, ConfigError, DatabaseError, FileError, PipelineError, ReadError, TransformError
    from chute.pipeline.graph import Node, Pipeline, file_filter, node
    from chute.config.project import Project, load_project


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chute' has no attribute {name!r}")

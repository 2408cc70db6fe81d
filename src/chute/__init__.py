"""chute: files land, a pipeline of Python nodes shapes them, PostgreSQL gets them exactly once."""

__version__ = "0.1.0"

from .errors import ChuteError, ConfigError, DatabaseError, FileError, PipelineError, ReadError, TransformError  # noqa: E402
from .pipeline import Node, Pipeline, file_filter, node  # noqa: E402
from .project import Project, load_project  # noqa: E402

__all__ = [
    "ChuteError", "ConfigError", "DatabaseError", "FileError", "PipelineError", "ReadError", "TransformError",
    "Node", "Pipeline", "file_filter", "node", "Project", "load_project", "__version__",
]

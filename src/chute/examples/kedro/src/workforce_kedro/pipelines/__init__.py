"""The project's modular pipelines (find_pipelines discovers them)."""

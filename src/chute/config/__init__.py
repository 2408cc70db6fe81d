"""Configuration: chute.toml -> a typed, validated Project (pydantic models).

    project.py    Project and its sections: landing, source, pipeline, tables, watch, notify, s3...
    contracts.py  the contract models ([tables.NAME.contract], `Contract(...)` in pipeline.py)
    steps.py      the `[[pipeline.steps]]` models (built-in transforms declared)
    extract.py    the [extract.NAME] models (database and HTTP extractions)
    follow.py     the [follow] model (a stage of a chain)

The lowest folder: imports only the loose modules (errors, coltypes). Everything else reads
its settings from here.
"""

"""A project's pipeline, ready to run: the user's module and the declared steps as one plan, and the
values a run provides it (params and references)."""

from __future__ import annotations

from typing import Any

from chute.config.project import CONFIG_NAME, Project
from chute.errors import ConfigError
from chute.pipeline.graph import Pipeline, Plan, load_pipeline
from chute.sources import open_zone
from chute.sources.base import LandingZone
from chute.transforms.steps import nodes_from_steps


def landing_zone(project: Project) -> LandingZone:
    return open_zone(project)


def provided_values(project: Project) -> dict[str, Any]:
    """What a run provides its plan's once-per-run nodes: the params, and the references as paths."""
    values: dict[str, Any] = dict(project.params)
    for name, relative in project.references.items():
        path = project.path(relative)
        if not path.is_file():
            raise ConfigError(f"reference {name!r}: file {relative} not found in {project.root}")
        values[name] = path
    return values


def build_plan(project: Project) -> Plan:
    if not project.tables:  # the files would be recorded as loaded with their rows written nowhere
        raise ConfigError(f"{CONFIG_NAME}: no table receives the rows; add a [tables.{project.pipeline.input}] "
                          "section with the table's columns (see docs/configuration.md)")
    module = project.pipeline.module
    pipeline = load_pipeline(project.path(module)) if module else Pipeline([])
    kedro = []
    if project.pipeline.kedro is not None:  # a Kedro project's pipeline (kedro is imported only then)
        from chute.pipeline.kedro import kedro_nodes

        kedro = kedro_nodes(project, [*project.references, *project.params])
    pipeline = Pipeline([*nodes_from_steps(project.pipeline.steps, project.pipeline.input), *pipeline.nodes,
                         *kedro], pipeline.contracts)
    return pipeline.plan(project.pipeline.input, [*project.references, *project.params], project.tables)

"""Which database a command uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chute.config.project import Project


def resolve_database(project: "Project | None", cli_url: str | None, folder: Path, *, chosen: bool = False) -> str:
    """--db, else $CHUTE_DATABASE_URL, else chute.toml, else the embedded cluster (started if needed):
    the project's own, or outside a project this user's default cluster (db/embedded.py)."""
    from chute.db.embedded import EmbeddedPostgres, cluster_of

    url = cli_url or os.environ.get("CHUTE_DATABASE_URL") or (project.configured_database_url() if project else None)
    if url:
        return url
    if project is not None:
        return EmbeddedPostgres(project.root / ".chute" / "pg").start()
    return cluster_of(folder, chosen=chosen).start()

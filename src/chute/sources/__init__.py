"""Landing zones: a local folder (local.py) or an S3 prefix (s3.py), chosen by the path; S3 event
messages -> the objects they name, and which names a zone takes (s3_events.py: the one parser,
used by `chute watch` and the AWS trigger Lambda)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chute.sources.base import FileEntry, LandingZone
from chute.sources.local import LocalZone

if TYPE_CHECKING:
    from chute.config.project import Project

__all__ = ["FileEntry", "LandingZone", "LocalZone", "open_zone"]


def open_zone(project: "Project") -> LandingZone:
    """The project's landing zone: S3Zone for `s3://bucket/prefix`, else LocalZone for a folder."""
    landing = project.landing
    marker = landing.marker if landing.trigger == "marker" else None
    if landing.path.startswith("s3://"):
        from chute.sources.s3 import S3Zone

        logs = project.run_log.s3_prefix
        return S3Zone(landing.path, landing.patterns, landing.recursive, marker=marker,
                      exclude=(logs,) if logs else ())
    return LocalZone(project.landing_path, landing.patterns, landing.recursive, marker=marker)

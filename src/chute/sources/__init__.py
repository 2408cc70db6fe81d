"""Landing zones: a local folder (local.py) or an S3 prefix (s3.py), chosen by the path.

    base.py        FileEntry, LandingZone
    partitions.py  year=/month=/day= folders: a time Window, listing only its files
    selection.py   Selection: what a trigger scopes a run to (names, prefix, window, settle time)
    s3_events.py   the one S3 event parser and the one file filter for event keys (`chute watch`
                   and the AWS trigger Lambda)

May import: config and below.
"""

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

"""A JSON document per run: logs/run-<id>.json in the project, and under logs/ in the bucket
when the landing zone is S3 (like a Logs/ folder beside the data). Every string in it is redacted."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timezone
from typing import Any

from chute import __version__
from chute.notify.message import first_errors, project_secrets, redact


def document(project, summary, trigger: str, landing_uri: str) -> dict[str, Any]:
    ended = time.time()
    data = summary.to_dict()
    data.update(
        project=project.name, trigger=trigger, landing=landing_uri, host=socket.gethostname(),
        chute_version=__version__, first_errors=first_errors(summary),
        started_at=_iso(ended - summary.seconds), ended_at=_iso(ended),
    )
    return _redacted(data, project_secrets(project))


def write(project, summary, zone, trigger: str) -> str:
    """Write the run's log; returns where it is (the bucket copy when there is one). Raises on failure."""
    config = project.run_log
    landing = getattr(zone, "url", None) or str(project.landing_path)
    text = json.dumps(document(project, summary, trigger, landing), indent=2, default=str) + "\n"
    name = f"run-{summary.run_id}.json"
    folder = project.path(config.folder)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    partial.write_text(text, encoding="utf-8")
    partial.replace(folder / name)  # readers never see half a log
    where = str(folder / name)
    if config.s3_prefix and hasattr(zone, "put_text"):
        where = zone.put_text(f"{config.s3_prefix}{name}", text)
    return where


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secrets) for v in value]
    return value

"""What starts runs, for the schedules page: schedules (next, last and missed fires), the
landing zone's trigger (folder or S3 events, file or batch-marker mode), the chain's queue, and
the extractions' watermarks, said readably."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from pathlib import Path
from typing import Any

from chute.config.project import Project
from chute.ledger.watermarks import describe
from chute.sources.s3 import is_s3_url

S3_TIMEOUT = 3.0  # seconds the page waits for SQS before saying the depth is unknown
MARKER_SCAN_LIMIT = 20_000  # entries of a local landing zone looked at for batch markers


def schedules(project: Project, stats: dict[str, dict], now: dt.datetime) -> list[dict[str, Any]]:
    """Each [[schedules]] entry with its next fire (from now), last fire and missed fires; then
    schedules the ledger knows that chute.toml no longer declares."""
    from croniter import croniter

    out = []
    for s in project.schedules:
        seen = stats.get(s.name, {})
        upcoming = croniter(s.cron, now.astimezone()).get_next(dt.datetime)
        out.append({"name": s.name, "cron": s.cron, "missed_policy": s.missed, "extract": s.extract,
                    "next": upcoming, "next_in": (upcoming - now).total_seconds(),
                    "last_fired": seen.get("last_fired"), "fired": seen.get("fired", 0),
                    "missed": seen.get("missed", 0), "last_missed": seen.get("last_missed"), "declared": True})
    for name, seen in stats.items():
        if name not in {s.name for s in project.schedules}:
            out.append({"name": name, "cron": seen["cron"], "missed_policy": None, "extract": [], "next": None,
                        "next_in": None,
                        "last_fired": seen["last_fired"], "fired": seen["fired"], "missed": seen["missed"],
                        "last_missed": seen["last_missed"], "declared": False})
    for entry in out:
        entry["last_ago"] = (now - entry["last_fired"]).total_seconds() if entry["last_fired"] else None
    return out


def landing(project: Project) -> dict[str, Any]:
    """The landing zone's trigger: where, which files, file or marker mode, and for a local zone
    in marker mode the batches that have their marker and those still waiting for it."""
    zone = project.landing
    out: dict[str, Any] = {"where": zone.path if is_s3_url(zone.path) else str(project.landing_path),
                           "s3": is_s3_url(zone.path), "patterns": zone.patterns, "mode": zone.trigger,
                           "marker": zone.marker if zone.trigger == "marker" else None}
    if zone.trigger == "marker" and not out["s3"]:
        out.update(_marker_batches(project.landing_path, zone.marker))
    return out


def _marker_batches(root: Path, marker: str) -> dict[str, Any]:
    """Folders of a local zone holding files: with their marker (ready) or without (waiting)."""
    ready, waiting, seen = [], [], 0
    if not root.is_dir():
        return {"ready": [], "waiting": [], "scanned_all": True}
    for folder, _dirs, files in _walk(root):
        seen += len(files) + 1
        if seen > MARKER_SCAN_LIMIT:
            return {"ready": ready, "waiting": waiting, "scanned_all": False}
        data = [f for f in files if f != marker and not f.startswith(".")]
        if not data:
            continue
        name = "(the top folder)" if folder == root else str(folder.relative_to(root))
        (ready if marker in files else waiting).append(name)
    return {"ready": sorted(ready), "waiting": sorted(waiting), "scanned_all": True}


def _walk(root: Path):
    import os

    for folder, dirs, files in os.walk(root):
        dirs.sort()
        yield Path(folder), dirs, files


def s3_queue(project: Project) -> dict[str, Any] | None:
    """The S3 event queue's depth (waiting, in flight, dead), or why it is unknown; None when
    the landing zone is not S3."""
    if not is_s3_url(project.landing.path):
        return None
    from chute.watch import s3_queue as plumbing

    name = project.s3.queue_name(project.name)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        depth = pool.submit(plumbing.depth, project).result(timeout=S3_TIMEOUT)
        return {"queue": name, **depth, "error": None}
    except concurrent.futures.TimeoutError:
        return {"queue": name, "error": f"SQS did not answer within {S3_TIMEOUT:g} s"}
    except Exception as exc:  # no credentials, no queue (chute s3 setup not run), no network: say so
        return {"queue": name, "error": str(exc).splitlines()[0][:300]}
    finally:
        pool.shutdown(wait=False)


def watermarks(project: Project, rows: list[dict]) -> list[dict[str, Any]]:
    """Each extraction's watermark as a person reads it; declared extractions that never ran
    too; a fan-out's per-key rows (NAME|key=value) under their extraction."""
    by_name: dict[str, dict[str, Any]] = {}
    for name, config in project.extract.items():
        by_name[name] = {"name": name, "kind": getattr(config, "kind", ""), "value": "none yet (never ran)",
                         "row": None, "per_key": []}
    for r in rows:
        name, _, key = r["extract"].partition("|")
        entry = by_name.setdefault(name, {"name": name, "kind": "(not in chute.toml)", "value": "none yet",
                                          "row": None, "per_key": []})
        if key:
            entry["per_key"].append({"key": key, "value": describe(r["value"]), "updated_at": r["updated_at"]})
        else:
            entry["row"] = r
            entry["value"] = describe(r["value"])
    return list(by_name.values())

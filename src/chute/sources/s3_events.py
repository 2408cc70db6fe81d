"""S3 event messages -> the objects they name, and which of those a landing zone takes.

One parser for every way an S3 "object created" event arrives: `chute watch` reads SQS message
bodies (S3 -> SQS, S3 -> SNS -> SQS, S3 -> EventBridge -> SQS); the AWS deployment's trigger Lambda
is also handed whole Lambda events (an S3 notification, an SQS batch whose bodies are any of
the above, an SNS batch, an EventBridge event).
"""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote_plus

from chute.sources.base import is_ignored

if TYPE_CHECKING:
    from chute.config.project import Landing


class S3Object(NamedTuple):
    """An object an event says was created. `etag` is as the event gives it ("" when absent)."""

    bucket: str
    key: str
    etag: str = ""


def parse_event(event: Any) -> list[S3Object]:
    """Each object-created record of an event, however it came; [] for test events and noise.

    `event` is a message body (text) or a decoded Lambda event. Keys are URL-encoded in S3's
    notifications ('+' for a space), hence unquote_plus; EventBridge events carry the key as it is
    (AWS's examples show ':' unencoded, and moto sends key.name), so decoding would turn a '+' in a
    name into a space.
    Deletions, restores and other event types name no new object and are left out."""
    if isinstance(event, (str, bytes)):
        try:
            event = json.loads(event)
        except ValueError:
            return []
    if not isinstance(event, dict):
        return []
    found: list[S3Object] = []
    if event.get("Type") == "Notification" and isinstance(event.get("Message"), str):  # SNS envelope
        found += parse_event(event["Message"])
    if event.get("detail-type") == "Object Created" and isinstance(event.get("detail"), dict):  # EventBridge
        detail = event["detail"]
        obj = detail.get("object") or {}
        found.append(S3Object(str((detail.get("bucket") or {}).get("name", "")), str(obj.get("key", "")),
                              str(obj.get("etag", ""))))
    for record in event.get("Records") or ():
        if not isinstance(record, dict):
            continue
        if isinstance(record.get("s3"), dict):  # an S3 notification record
            if str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
                s3 = record["s3"]
                obj = s3.get("object") or {}
                found.append(S3Object(str((s3.get("bucket") or {}).get("name", "")),
                                      unquote_plus(str(obj.get("key", ""))), str(obj.get("eTag", ""))))
        elif "body" in record:  # a Lambda's SQS batch: each body is a message of its own
            found += parse_event(record["body"])
        elif isinstance(record.get("Sns"), dict):  # a Lambda's SNS batch
            found += parse_event(record["Sns"].get("Message", ""))
    return [o for o in found if o.bucket and o.key]  # anything else (s3:TestEvent) names nothing


def wanted(name: str, landing: Landing) -> bool:
    """Whether a landing zone takes the file `name` (its path under the zone, '/'-separated):
    `[landing] recursive` (only top-level files when off), `patterns` (on the last part), and
    no part ignored (hidden, partial: see is_ignored)."""
    parts = name.split("/")
    return (bool(name) and (landing.recursive or len(parts) == 1)
            and not any(is_ignored(p) for p in parts)
            and any(fnmatch.fnmatch(parts[-1], p) for p in landing.patterns))

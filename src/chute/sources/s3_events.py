"""S3 event messages -> the objects they name (S3 -> SQS, S3 -> SNS -> SQS, S3 -> EventBridge)."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus


def parse_event(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of each object an S3 event message names; [] for test events and noise.

    Understands S3 -> SQS (keys URL-encoded, hence unquote_plus), S3 -> SNS -> SQS (the event
    inside the SNS envelope) and S3 -> EventBridge -> SQS (keys not encoded)."""
    try:
        event = json.loads(body)
    except ValueError:
        return []
    if not isinstance(event, dict):
        return []
    if event.get("Type") == "Notification" and isinstance(event.get("Message"), str):
        return parse_event(event["Message"])
    if event.get("Event") == "s3:TestEvent":
        return []
    if event.get("source") == "aws.s3" and isinstance(event.get("detail"), dict):
        detail = event["detail"]
        return [(detail.get("bucket", {}).get("name", ""), detail.get("object", {}).get("key", ""))]
    found = []
    for record in event.get("Records") or ():
        s3 = record.get("s3") if isinstance(record, dict) else None
        if isinstance(s3, dict) and str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            found.append((s3.get("bucket", {}).get("name", ""), unquote_plus(s3.get("object", {}).get("key", ""))))
    return [(b, k) for b, k in found if b and k]

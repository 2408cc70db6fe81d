"""The SQS plumbing of an S3 landing zone: `chute s3 setup` and the dead-letter redrive.

    bucket --ObjectCreated under prefix--> SQS queue --after max_receive_count failures--> SQS DLQ

Setup is idempotent: it creates what is missing and brings what exists to the configured
state (queue attributes, redrive policy, queue policy, the bucket's notification entry),
leaving the bucket's other notification entries alone.
"""

from __future__ import annotations

import json
from typing import Any

from chute.errors import ConfigError, LandingZoneError
from chute.sources.s3 import describe_aws_error, is_s3_url, parse_s3_url, s3_client


def notification_id(project) -> str:
    return f"chute-{project.name}"


def require_s3(project) -> tuple[str, str]:
    if not is_s3_url(project.landing.path):
        raise ConfigError(f"[landing] path = {project.landing.path!r} is not s3://bucket/prefix; "
                          "S3 events need an S3 landing zone")
    return parse_s3_url(project.landing.path)


def _queue(sqs, name: str, attributes: dict[str, str], done: dict[str, list]) -> tuple[str, str]:
    """Create the queue, or set its attributes when it exists. Returns (url, arn)."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        done["updated"].append(f"sqs:{name}")
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        done["created"].append(f"sqs:{name}")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def queue_policy(queue_arn: str, bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "chute-s3-events",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
        }],
    })


def setup(project) -> dict[str, Any]:
    """Create or update the queue, its DLQ and the bucket notification. Returns what it did."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = require_s3(project)
    cfg = project.s3
    done: dict[str, list] = {"created": [], "updated": []}
    try:
        sqs, s3 = s3_client("sqs"), s3_client("s3")
        dlq_url, dlq_arn = _queue(sqs, cfg.dead_letter_name(project.name),
                                  {"MessageRetentionPeriod": str(14 * 24 * 3600)}, done)
        main_attributes = {
            "VisibilityTimeout": str(cfg.visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(cfg.wait_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(cfg.max_receive_count)}),
        }
        url, arn = _queue(sqs, cfg.queue_name(project.name), main_attributes, done)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": queue_policy(arn, bucket)})

        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        ours = notification_id(project)
        queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != ours]
        entry: dict[str, Any] = {"Id": ours, "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
        if prefix:
            entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
        current["QueueConfigurations"] = [*queues, entry]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=current)
        done["updated"].append(f"s3:{bucket} notification {ours}")
    except (BotoCoreError, ClientError) as exc:
        raise LandingZoneError(f"s3 setup for {project.landing.path}: {describe_aws_error(exc)}") from None
    return {
        "bucket": bucket, "prefix": prefix, "queue_url": url, "queue_arn": arn,
        "dead_letter_queue_url": dlq_url, "dead_letter_queue_arn": dlq_arn,
        "max_receive_count": cfg.max_receive_count, "notification_id": ours, **done,
    }


def queue_urls(project, sqs=None) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL); a clear error when `chute s3 setup` was not run."""
    sqs = sqs or s3_client("sqs")
    cfg = project.s3
    try:
        return (sqs.get_queue_url(QueueName=cfg.queue_name(project.name))["QueueUrl"],
                sqs.get_queue_url(QueueName=cfg.dead_letter_name(project.name))["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        raise ConfigError(f"no SQS queue {cfg.queue_name(project.name)!r}: run `chute s3 setup --project "
                          f"{project.root}` first") from None


def redrive(project, limit: int | None = None) -> dict[str, Any]:
    """Move messages from the dead-letter queue back to the queue, to be tried again."""
    from botocore.exceptions import BotoCoreError, ClientError

    sqs = s3_client("sqs")
    url, dlq_url = queue_urls(project, sqs)
    moved = 0
    try:
        while limit is None or moved < limit:
            batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                        VisibilityTimeout=60).get("Messages", [])
            if not batch:
                break
            for message in batch[: None if limit is None else limit - moved]:
                sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
    except (BotoCoreError, ClientError) as exc:
        raise LandingZoneError(f"redrive: {describe_aws_error(exc)}") from None
    return {"moved": moved, "from": dlq_url, "to": url}


def dead_letters(project, limit: int = 10) -> list[dict[str, Any]]:
    """A look at the dead-letter queue; the messages stay in it."""
    from chute.sources.s3_events import parse_event

    sqs = s3_client("sqs")
    _, dlq_url = queue_urls(project, sqs)
    found, handles = [], []
    while len(found) < limit:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=min(10, limit - len(found)),
                                    WaitTimeSeconds=0, VisibilityTimeout=30,
                                    AttributeNames=["ApproximateReceiveCount", "SentTimestamp"]).get("Messages", [])
        if not batch:
            break
        for m in batch:
            handles.append(m["ReceiptHandle"])
            found.append({"message_id": m["MessageId"], "keys": [f"s3://{o.bucket}/{o.key}" for o in parse_event(m["Body"])],
                          "sent": m.get("Attributes", {}).get("SentTimestamp")})
    for handle in handles:  # looked at, not taken: visible again at once (for redrive)
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def depth(project, sqs=None) -> dict[str, int]:
    """Messages in the project's event queue: waiting, in flight (received, their run going), and
    in its dead-letter queue. Raises ConfigError when `chute s3 setup` was not run."""
    sqs = sqs or s3_client("sqs")
    url, dlq = queue_urls(project, sqs)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    main = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    dead = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=names[:1])["Attributes"]
    return {"waiting": int(main.get(names[0], 0)), "in_flight": int(main.get(names[1], 0)),
            "dead": int(dead.get(names[0], 0))}

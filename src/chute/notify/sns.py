"""An Amazon SNS topic (boto3; credentials and endpoint from the environment / instance role)."""

from __future__ import annotations

SUBJECT_MAX = 100  # SNS refuses longer subjects, and line breaks in them


def send(cfg, subject: str, body: str) -> None:
    from chute.sources.s3 import s3_client

    clean = " ".join(subject.split())[:SUBJECT_MAX]
    s3_client("sns").publish(TopicArn=cfg.topic_arn, Subject=clean, Message=body)

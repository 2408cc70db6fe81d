"""Names AWS needs, derived so that they are stable and within AWS's limits."""

from __future__ import annotations

import hashlib
import re

# Step Functions: 1-80 characters of letters, digits, '-' and '_'.
EXECUTION_NAME_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def execution_name(bucket: str, key: str, etag: str, *extra: str) -> str:
    """The one execution an S3 object version may start: the same bucket, key and ETag (and,
    for a batch marker, the same files behind it) always give the same name, so a repeated
    event asks Step Functions to start an execution that already exists and nothing runs twice.

    A short readable prefix (the file's base name) helps a person find it in the console.
    """
    etag = etag.strip('"')
    digest = hashlib.sha256("\n".join((bucket, key, etag, *extra)).encode()).hexdigest()
    base = _UNSAFE.sub("-", key.rstrip("/").rsplit("/", 1)[-1]).strip("-")[:14] or "batch"
    return f"{base}-{digest[:EXECUTION_NAME_MAX - len(base) - 1]}"


def resource_prefix(project_name: str) -> str:
    """A prefix for resource names: lower case letters, digits and '-', at most 24 characters."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", project_name.lower()).strip("-")
    return (cleaned or "chute")[:24].rstrip("-")


def logical_id(text: str) -> str:
    """A CloudFormation logical id (alphanumeric) from a node or table name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part) or "X"


def chain_topic_name(project_name: str, environment: str) -> str:
    """The SNS topic a project's stack publishes its chain wake-ups to ("messages were sent to
    the stages that follow me"). Derived from the project's name and the environment only, so
    a follower's stack can name its upstream's topic without looking it up; `environment` is
    the literal or the template's reference to it (${Environment}, ${var.environment})."""
    return f"chute-{resource_prefix(project_name)}-{environment}-chain"


_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def aws_cron(expression: str) -> str:
    """A cron expression as chute takes it (croniter: minute hour day-of-month month day-of-week,
    an optional 6th field of seconds) -> EventBridge Scheduler's `cron(minutes hours dom month dow
    year)`. AWS wants `?` in one of the two day fields, counts days of the week 1-7 from Sunday
    (names are used here: SUN-SAT) and has no seconds."""
    from chute.errors import ConfigError

    fields = expression.split()
    if len(fields) == 6:
        if fields[5] not in ("0", "*/60"):
            raise ConfigError(f"schedule {expression!r}: AWS schedules have minute granularity (no seconds)")
        fields = fields[:5]
    if len(fields) != 5:
        raise ConfigError(f"schedule {expression!r}: five fields expected (minute hour day month weekday)")
    minute, hour, dom, month, dow = fields

    def day_name(part: str) -> str:
        return _DAYS[int(part) % 7] if part.isdigit() else part.upper()

    if dow != "*":
        dow = ",".join("-".join(day_name(x) for x in item.split("-")) for item in dow.split(","))
    if dom != "*" and dow != "*":
        raise ConfigError(f"schedule {expression!r}: AWS cannot combine a day of the month and a day of the week")
    if dow == "*":
        dow = "?"
    else:
        dom = "?"
    return f"cron({minute} {hour} {dom} {month} {dow} *)"

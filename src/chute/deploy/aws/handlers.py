"""Lambda entry points. Each is a thin wrapper over the code `chute run` uses:

    trigger  S3 event (direct, via SQS, via EventBridge) or a .SUCCESS marker
             -> one Step Functions execution per object version (see names.execution_name)
    node     action prepare: head the batch's files, apply the pipeline's file filters
             action read:    a landing file -> the input dataset as staged Parquet (formats.csv)
             action node:    one pipeline node on staged Parquet -> staged Parquet (pipeline.py)
    load     the staged table datasets -> PostgreSQL exactly once (staged_load.py: loader + ledger)
    notify   the run's outcome -> SNS; a failed batch -> the failed-runs queue; when the load sent
             messages to following stages (chute.chain), a wake-up -> the chain topic
    stage    a chained stage ([follow]): an SQS wake-up or the sweeper's schedule -> exactly what
             `chute run -p STAGE` does (chain.consume through the Runner), landing zone on S3

Configuration comes from environment variables set by the template (model.ENVIRONMENT).
Errors worth a retry (chute.retry.is_transient: the one list) are raised as RetryStep, which the
state machine retries with backoff; a bad file is never an exception here: it is recorded and the
batch goes on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from datetime import datetime
from typing import Any

import pyarrow as pa

from chute.errors import ChuteError, FileError, TransformError
from chute.formats.reader import read_source
from chute.formats.salvage import numbered
from chute.pipeline.graph import run_node
from chute.config.project import Project, load_project
from chute.pipeline.graph import as_frame
from chute.run.plan import build_plan, provided_values
from chute.retry import is_transient
from chute.sources.base import FileEntry
from chute.sources.s3_events import parse_event, wanted
from chute.deploy.aws.model import ENVIRONMENT, MARKER
from chute.deploy.aws.names import execution_name
from chute.deploy.aws.staging import Staging, file_slug


class RetryStep(Exception):
    """Worth another try: a service was briefly unreachable, or another load holds the pipeline's
    lock. Its class name is what the state machine's Retry matches (statemachine.TRANSIENT_ERRORS)."""


# -- set-up shared by the handlers ---------------------------------------------------------------
def env_setting(name: str, default: str | None = None) -> str:
    """The value of a setting the template passes in the environment (model.ENVIRONMENT)."""
    value = os.environ.get(ENVIRONMENT[name], default)
    if value is None:
        raise ChuteError(f"${ENVIRONMENT[name]} is not set (the template sets it)")
    return value


@functools.cache
def _project(folder: str) -> Project:
    return load_project(folder)


def project() -> Project:
    return _project(env_setting("project_dir", "/var/task/project"))


@functools.cache
def _plan(folder: str):
    return build_plan(_project(folder))


def plan():
    return _plan(env_setting("project_dir", "/var/task/project"))


@functools.cache
def _static(folder: str) -> dict[str, Any]:
    """Once-per-run values (references, params, nodes that need no landing data), per container."""
    return _plan(folder).run_static(provided_values(_project(folder)))


def static_values() -> dict[str, Any]:
    return _static(env_setting("project_dir", "/var/task/project"))


def client(service: str):
    import boto3  # in the Lambda runtime; `pip install chute[aws]` elsewhere

    return boto3.client(service)  # honours AWS_ENDPOINT_URL (tests point it at moto)


def _staging(event: dict[str, Any]) -> Staging:
    return Staging(client("s3"), env_setting("staging_bucket"), env_setting("staging_prefix", "staging/"),
                   event["batch_id"])


def _name_of(key: str) -> str | None:
    """The file's name in the ledger (its key under the landing prefix), or None outside it."""
    prefix = env_setting("landing_prefix", "")
    return key[len(prefix):] if key.startswith(prefix) else None


def _wanted(key: str) -> bool:
    """Whether the project takes the object at `key`: under the landing prefix, and a name the
    landing zone takes (the same rule as `chute watch`: recursive, patterns, ignored names)."""
    name = _name_of(key)
    return name is not None and wanted(name, project().landing)


# -- trigger -------------------------------------------------------------------------------------
def _marker_batch(s3, bucket: str, marker_key: str) -> list[dict[str, Any]]:
    folder = marker_key[: -len(MARKER)]
    files = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            if _wanted(obj["Key"]):
                files.append({"key": obj["Key"], "etag": obj["ETag"].strip('"'), "size": obj["Size"]})
    return files


def trigger(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Start one execution per new object (or per .SUCCESS marker, with the files of its folder)."""
    s3, sfn = client("s3"), client("stepfunctions")
    wait_for_marker = env_setting("wait_for_marker", "yes") == "yes"
    report: dict[str, list[str]] = {"started": [], "duplicates": [], "ignored": []}
    for bucket, key, etag in parse_event(event):  # S3, SQS, SNS or EventBridge: chute.sources.s3_events
        if key.rsplit("/", 1)[-1] == MARKER:
            files = _marker_batch(s3, bucket, key)
            name = execution_name(bucket, key, etag, *sorted(f"{f['key']}@{f['etag']}" for f in files))
        elif not wait_for_marker and _wanted(key):
            files = [{"key": key, "etag": etag.strip('"'), "size": None}]
            name = execution_name(bucket, key, etag)
        else:
            report["ignored"].append(key)
            continue
        if not files:
            report["ignored"].append(key)
            continue
        batch = {"batch_id": name, "bucket": bucket, "event_key": key, "files": files}
        try:
            sfn.start_execution(stateMachineArn=env_setting("state_machine"), name=name, input=json.dumps(batch))
            report["started"].append(name)
        except sfn.exceptions.ExecutionAlreadyExists:
            report["duplicates"].append(name)  # this object version already has its execution
    return report


# -- node ----------------------------------------------------------------------------------------
def node(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        action = event.get("action")
        if action == "prepare":
            return _prepare(event)
        if action == "read":
            return _read(event)
        if action == "node":
            return _node(event)
        raise ChuteError(f"unknown action {action!r} (prepare, read or node)")
    except Exception as exc:
        if is_transient(exc):
            raise RetryStep(str(exc)) from exc
        raise


def _prepare(event: dict[str, Any]) -> dict[str, Any]:
    """Head each file (size, ETag, time) and apply the pipeline's file filters."""
    s3 = client("s3")
    wanted, excluded = [], []
    current_plan = plan()
    static = static_values() if current_plan.filters else {}
    for f in event["files"]:
        name = _name_of(f["key"]) or f["key"]
        if current_plan.filters and current_plan.wants(name, static) is not None:
            excluded.append(name)
            continue
        head = s3.head_object(Bucket=event["bucket"], Key=f["key"])
        modified: datetime = head["LastModified"]
        wanted.append({"key": f["key"], "name": name, "etag": head["ETag"].strip('"'), "size": head["ContentLength"],
                       "mtime_ns": int(modified.timestamp() * 1_000_000_000), "slug": file_slug(f["key"])})
    return {"files": wanted, "excluded": excluded}


def _read(event: dict[str, Any]) -> dict[str, Any]:
    """The landing file -> the pipeline's input dataset, staged; a bad file is recorded, not raised."""
    f = event["file"]
    staging = _staging(event)
    p = project()
    body = client("s3").get_object(Bucket=event["bucket"], Key=f["key"])["Body"].read()
    sha = hashlib.sha256(body).hexdigest()
    try:
        frames = list(numbered(read_source(pa.py_buffer(body), p.source, int(p.source.batch_mb * (1 << 20)))))
    except FileError as exc:
        staging.put_meta(f["slug"], {"sha256": sha, "error": str(exc)})
        return {"file": f["name"], "error": str(exc)}
    import polars as pl

    frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    frame = frame.with_columns(pl.lit(f["name"]).alias(p.source.file_column))
    staging.put_frame(f["slug"], p.pipeline.input, frame)
    staging.put_meta(f["slug"], {"sha256": sha, "rows_read": frame.height})
    return {"file": f["name"], "rows": frame.height}


def _node(event: dict[str, Any]) -> dict[str, Any]:
    """One node on one file's staged inputs; its outputs staged in turn."""
    f = event["file"]
    staging = _staging(event)
    meta = staging.get_meta(f["slug"])
    if meta.get("error"):
        return {"file": f["name"], "skipped": meta["error"]}
    current_plan = plan()
    the_node = next((n for n in current_plan.batch if n.name == event["node"]), None)
    if the_node is None:
        raise ChuteError(f"the pipeline has no per-batch node {event['node']!r}; render the deployment again")
    staged = {current_plan.source} | {out for n in current_plan.batch for out in n.outputs}
    values = dict(static_values())
    for name in the_node.inputs:
        if name in staged:
            values[name] = staging.get_frame(f["slug"], name)
    try:
        run_node(the_node, values, None)
        for out in the_node.outputs:
            staging.put_frame(f["slug"], out, as_frame(values[out], out))
    except TransformError as exc:
        staging.put_meta(f["slug"], {**meta, "error": str(exc)})
        return {"file": f["name"], "error": str(exc)}
    return {"file": f["name"], "node": the_node.name}


# -- load ----------------------------------------------------------------------------------------
def database_url() -> str:
    """The database's URL from its Secrets Manager secret (host, port, username, password, dbname:
    the shape RDS and the template's generated secret have)."""
    from urllib.parse import quote

    secret = json.loads(client("secretsmanager").get_secret_value(SecretId=env_setting("db_secret"))["SecretString"])
    # RDS's own managed secret (the Terraform stack) holds only the user and password: the rest comes
    # from the environment there.
    host = secret.get("host") or os.environ.get("CHUTE_DB_HOST")
    dbname = secret.get("dbname") or os.environ.get("CHUTE_DB_NAME") or "postgres"
    if not host:
        raise ChuteError("the database secret has no host and $CHUTE_DB_HOST is not set")
    return (f"postgresql://{quote(secret['username'], safe='')}:{quote(secret['password'], safe='')}"
            f"@{host}:{secret.get('port', 5432)}/{quote(dbname, safe='')}")


def load(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    from chute.deploy.aws.staged_load import StagedFile, load_staged

    p = project()
    staging = _staging(event)
    files = []
    for f in event["files"]:
        entry = FileEntry(f["name"], f"s3://{event['bucket']}/{f['key']}", f["size"], f["mtime_ns"], f["key"])
        files.append(StagedFile(entry, staging.get_meta(f["slug"]),
                                functools.partial(staging.get_frame, f["slug"])))
    try:
        summary = load_staged(p, database_url(), files, trigger="s3", excluded=len(event.get("excluded") or []))
    except Exception as exc:  # the database away or the pipeline's lock held: again; a wrong password: not
        if is_transient(exc):
            raise RetryStep(str(exc)) from exc
        raise
    data = summary.to_dict()
    data["files"] = data["files"][:100]  # the state payload is capped at 256 KB
    return data


# -- notify --------------------------------------------------------------------------------------
def message(project_name: str, outcome: str, execution: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a run's notification. No secrets: names, counts and errors only."""
    summary = execution.get("summary") or {}
    batch = execution.get("batch_id", "?")
    lines = [f"chute pipeline {project_name}, batch {batch}: {outcome}"]
    if summary:
        lines.append(f"files: {summary.get('files_loaded', 0)} loaded, {summary.get('files_failed', 0)} failed, "
                     f"{summary.get('files_skipped', 0)} skipped, {summary.get('unchanged', 0)} unchanged, "
                     f"{summary.get('excluded', 0)} excluded; rows loaded: {summary.get('rows_loaded', 0)}")
        for f in summary.get("files", []):
            if f.get("status") == "failed":
                lines.append(f"  failed: {f['name']}: {f.get('error')}")
        if summary.get("error"):
            lines.append(f"error: {summary['error']}")
    error = execution.get("error")
    if error:
        lines.append(f"step failed: {error.get('Error')}: {str(error.get('Cause', ''))[:2000]}")
    if not summary and not error:
        lines.append(f"files: {len(execution.get('files') or [])}")
    subject = f"chute {project_name}: batch {outcome}"
    return subject[:100], "\n".join(lines)


def notify(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    outcome = event.get("outcome", "failed")
    execution = event.get("execution") or {}
    subject, body = message(project().name, outcome, execution)
    published = client("sns").publish(TopicArn=env_setting("topic"), Subject=subject, Message=body)
    woken = wake_followers(project().name, execution)
    parked = None
    if outcome != "succeeded":
        keep = {k: execution.get(k) for k in ("batch_id", "bucket", "event_key", "files", "error")}
        keep["summary"] = {k: v for k, v in (execution.get("summary") or {}).items() if k != "files"}
        parked = client("sqs").send_message(QueueUrl=env_setting("failed_runs_queue"),
                                            MessageBody=json.dumps(keep, default=str))["MessageId"]
    return {"published": published["MessageId"], "parked": parked, "woken": woken}


def wake_followers(project_name: str, execution: dict[str, Any]) -> str | None:
    """The load committed messages for the stages that follow this project: tell them (their
    stage queues subscribe to this topic). Only a wake-up: the messages are in chute.queue."""
    published = ((execution.get("summary") or {}).get("chain") or {}).get("published") or 0
    if not published:
        return None
    body = {"upstream": project_name, "batch_id": execution.get("batch_id"), "published": published,
            "run_id": (execution.get("summary") or {}).get("run_id")}
    return client("sns").publish(TopicArn=env_setting("chain_topic"), Message=json.dumps(body))["MessageId"]


# -- stage ---------------------------------------------------------------------------------------
class StageFailed(Exception):
    """The stage's run failed for a reason other than its messages' work (those are retried and
    dead-lettered in chute.queue): raised so that SQS delivers the wake-up again, and after
    max_attempts parks it in the stage's dead-letter queue (an alarm)."""


def stage_project() -> Project:
    """The project as `chute run` sees it, with the landing zone in the stack's landing bucket (the
    image's files are read-only) and run logs under /tmp (uploaded to the bucket as well)."""
    import tempfile

    p = project()
    bucket = env_setting("landing_bucket")
    landing = p.landing.model_copy(update={"path": f"s3://{bucket}/"})
    run_log = p.run_log.model_copy(update={"folder": os.path.join(tempfile.gettempdir(), "chute-logs")})
    return p.model_copy(update={"landing": landing, "run_log": run_log})


def stage(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One run of this chained stage: claim its messages in chute.queue, extract for their keys
    into the landing bucket, load, acknowledge in the load's transaction. Exactly once is the
    ledger's: a wake-up delivered twice finds the messages done and loads nothing."""
    from chute.run.runner import Runner

    p = stage_project()
    if p.follow is None:
        raise ChuteError(f"project {p.name} has no [follow] section; render the deployment again")
    records = [r for r in (event.get("Records") or []) if isinstance(r, dict)]
    woken_by = [r.get("body", "")[:500] for r in records]
    db_url = database_url()
    try:
        summary = Runner(p, db_url, trigger="sqs" if records else "schedule",
                         details={"woken_by": woken_by} if woken_by else None).run()
    except Exception as exc:  # the database away, the pipeline's lock held: SQS delivers the wake-up again
        if is_transient(exc):
            raise RetryStep(str(exc)) from exc
        raise
    data = summary.to_dict()
    data["files"] = data["files"][:100]
    # A middle stage (branches -> salespersons -> sales) is an upstream too: its run's loads sent
    # messages to the stages that follow it; wake them as the notify step does for a batch.
    published = _published_by(db_url, p.name, summary.run_id)
    if published:
        data["woken"] = wake_followers(p.name, {"summary": {"chain": {"published": published},
                                                            "run_id": summary.run_id}})
    chain = summary.chain or {}
    if not summary.ok and not chain.get("failed"):
        failed = "; ".join(f"{f.name}: {f.error}" for f in summary.files if f.status == "failed")[:1000]
        raise StageFailed(f"stage {p.name}: {summary.error or failed or 'the run failed'}")
    return data


def _published_by(db_url: str, pipeline: str, run_id: int | None) -> int:
    """Messages this pipeline's run sent to the stages that follow it (written by its loads)."""
    from chute.ledger import queue
    from chute.db.postgres import connect

    if run_id is None:
        return 0
    conn = connect(db_url)
    try:
        if not queue.exists(conn):
            return 0
        return int(conn.execute("SELECT count(*) FROM chute.queue WHERE upstream = %s AND upstream_run = %s",
                                (pipeline, run_id)).fetchone()[0])
    finally:
        conn.close()

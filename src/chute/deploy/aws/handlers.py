"""Lambda entry points. Each is a thin wrapper over the code `chute run` uses:

    trigger  S3 event (via EventBridge and SQS) or a .SUCCESS marker -> the batch's manifest in
             the staging bucket (its files in items of a few keys, file filters applied) and one
             Step Functions execution per object version, started with the manifest's coordinates
             only (see names.execution_name)
    node     action process:    one item's landing files -> per file: read, every per-batch node,
                                the table datasets staged as Parquet (a bad file is recorded)
             action unreadable: a file whose processing crashed (out of memory, timed out) -> its error
    load     action begin:  tables, and the run in chute.runs (once per execution)
             action load:   one item's staged files -> PostgreSQL, one transaction per file, with
                            the ledger (staged_load.py); what it did -> a result object in S3
             action finish: the children's results -> the run's counts (and files whose child
                            never finished -> failed)
    notify   the run's counts -> SNS; a failed batch -> the failed-runs queue; when the loads sent
             messages to following stages (chute.chain), a wake-up -> the chain topic
    stage    a chained stage ([follow]): an SQS wake-up or the sweeper's schedule -> exactly what
             `chute run -p STAGE` does (chain.consume through the Runner), landing zone on S3

Configuration comes from environment variables set by the template (model.ENVIRONMENT).
Errors worth a retry (chute.retry.is_transient: the one list) are raised as RetryStep, which the
state machine retries with backoff; a bad file is never an exception here: it is recorded and the
batch goes on.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import os
from datetime import datetime
from typing import Any

import pyarrow as pa

from chute.errors import ChuteError, FileError
from chute.formats.reader import read_source
from chute.formats.salvage import numbered
from chute.config.project import Project, load_project
from chute.pipeline.graph import as_frame
from chute.run.plan import build_plan, provided_values
from chute.retry import is_transient
from chute.sources.base import FileEntry
from chute.sources.s3_events import parse_event, wanted
from chute.deploy.aws.model import ENVIRONMENT, EXPORTS_PREFIX, MARKER
from chute.deploy.aws.names import execution_name
from chute.deploy.aws.staging import S3Upload, Staging, file_slug


class RetryStep(Exception):
    """Worth another try: a service was briefly unreachable, or another load holds the pipeline's
    lock. Its class name is what the state machine's Retry matches (statemachine.TRANSIENT_ERRORS)."""


# -- set-up shared by the handlers ---------------------------------------------------------------
# A function's own environment, when several functions share one process (the tests run every
# handler in theirs, on moto's threads): set, it replaces os.environ for the CHUTE_* variables, so
# a handler sees exactly what its template entry gives it. In Lambda it is never set.
ENVIRONMENT_OF_CALL: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "chute_aws_environment", default=None)


def environ(name: str, default: str | None = None) -> str | None:
    own = ENVIRONMENT_OF_CALL.get()
    if own is not None and name.startswith("CHUTE_"):
        return own.get(name, default)
    return os.environ.get(name, default)


def env_setting(name: str, default: str | None = None) -> str:
    """The value of a setting the template passes in the environment (model.ENVIRONMENT)."""
    value = environ(ENVIRONMENT[name], default)
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
    return Staging(client("s3"), env_setting("staging_bucket"), env_setting("staging_prefix", "staging/"), event["batch_id"])


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
                files.append({"key": obj["Key"], "etag": obj["ETag"].strip('"'), "size": obj["Size"],
                              "modified": obj["LastModified"]})
    return files


def items_of(files: list[dict[str, Any]], per_item: int, item_bytes: int) -> list[dict[str, list[str]]]:
    """The files (in key order) in items of at most `per_item` keys and `item_bytes` bytes (a
    bigger file is an item of its own): one item is one child of the state machine's Map."""
    items: list[dict[str, list[str]]] = []
    keys: list[str] = []
    size = 0
    for f in sorted(files, key=lambda f: f["key"]):
        if keys and (len(keys) >= per_item or size + (f["size"] or 0) > item_bytes):
            items.append({"keys": keys})
            keys, size = [], 0
        keys.append(f["key"])
        size += f["size"] or 0
    if keys:
        items.append({"keys": keys})
    return items


def _kept(files: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The files the pipeline's file filters accept, and how many they refused."""
    current_plan = plan()
    if not current_plan.filters:
        return files, 0
    static = static_values()
    kept = [f for f in files if current_plan.wants(_name_of(f["key"]) or f["key"], static) is None]
    return kept, len(files) - len(kept)


def _start(s3, sfn, bucket: str, key: str, etag: str, report: dict[str, list[str]]) -> None:
    if key.rsplit("/", 1)[-1] == MARKER:
        files = _marker_batch(s3, bucket, key)
        name = execution_name(bucket, key, etag, *sorted(f"{f['key']}@{f['etag']}" for f in files))
    elif env_setting("wait_for_marker", "yes") != "yes" and _wanted(key):
        files = [{"key": key, "etag": etag.strip('"'), "size": None}]
        name = execution_name(bucket, key, etag)
    else:
        report["ignored"].append(key)
        return
    started = _launch(s3, sfn, bucket, key, name, files, report)
    if started and key.rsplit("/", 1)[-1] == MARKER:
        _register(s3, bucket, key, name)


def _launch(s3, sfn, bucket: str, key: str, name: str, files: list[dict[str, Any]],
            report: dict[str, list[str]]) -> bool:
    """The batch's manifest, then its execution (coordinates only). False if no file is kept."""
    kept, excluded = _kept(files)
    if not kept:
        report["ignored"].append(key)
        return False
    settings = project().aws
    items = items_of(kept, settings.files_per_child, int(settings.child_mb * (1 << 20)))
    # The manifest first: a redelivered event rewrites the same bytes, then finds the execution.
    manifest = Staging(s3, env_setting("staging_bucket"), env_setting("staging_prefix", "staging/"), name).put_manifest(items)
    batch = {"batch_id": name, "bucket": bucket, "event_key": key, "manifest": manifest,
             "files": len(kept), "items": len(items), "excluded": excluded}
    try:
        sfn.start_execution(stateMachineArn=env_setting("state_machine"), name=name, input=json.dumps(batch))
        report["started"].append(name)
    except sfn.exceptions.ExecutionAlreadyExists:
        report["duplicates"].append(name)  # this object version already has its execution
    return True


# -- late files: the sweep -------------------------------------------------------------------------
SWEEP_HOURS = 48  # batches whose folder the sweep looks at again (older: `chute deploy rerun`)


def _batches_prefix() -> str:
    return env_setting("staging_prefix", "staging/") + "_batches/"


def _register(s3, bucket: str, marker: str, name: str) -> None:
    """Remember a marker's batch for the sweep: under its hour, with the marker's time."""
    from datetime import timezone

    modified = s3.head_object(Bucket=bucket, Key=marker)["LastModified"]
    hour = datetime.now(timezone.utc).strftime("%Y%m%d%H")
    s3.put_object(Bucket=env_setting("staging_bucket"), Key=f"{_batches_prefix()}{hour}/{name}.json",
                  Body=json.dumps({"batch_id": name, "bucket": bucket, "marker": marker,
                                   "marker_time": modified.isoformat()}).encode())


def sweep(s3, sfn, report: dict[str, list[str]], hours: int = SWEEP_HOURS) -> None:
    """Files that landed in a batch's folder after its marker (no event starts anything for them in
    marker mode): for each batch of the last `hours`, the folder's files not in its manifest, or
    changed since the marker, in one execution named from them - the same late files give the
    same name, so a second sweep starts nothing. The ledger loads each exactly once."""
    from datetime import timedelta, timezone

    staging_bucket = env_setting("staging_bucket")
    now = datetime.now(timezone.utc)
    for h in range(hours):
        prefix = f"{_batches_prefix()}{(now - timedelta(hours=h)).strftime('%Y%m%d%H')}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=staging_bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                batch = json.loads(s3.get_object(Bucket=staging_bucket, Key=obj["Key"])["Body"].read())
                known = {k for item in Staging(s3, staging_bucket, env_setting("staging_prefix", "staging/"),
                                               batch["batch_id"]).get_manifest() for k in item["keys"]}
                since = datetime.fromisoformat(batch["marker_time"])
                late = [f for f in _marker_batch(s3, batch["bucket"], batch["marker"])
                        if f["key"] not in known or f["modified"] > since]
                if not late:
                    continue
                digest = hashlib.sha256("\n".join([batch["bucket"], batch["marker"], *sorted(
                    f"{f['key']}@{f['etag']}" for f in late)]).encode()).hexdigest()
                _launch(s3, sfn, batch["bucket"], batch["marker"], f"late-{digest[:64]}", late, report)


def trigger(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Start one execution per new object (or per .SUCCESS marker, with the files of its folder).

    From SQS, each message on its own: one that fails (throttled, S3 away) is reported in
    `batchItemFailures` and comes back alone; the others are done and deleted."""
    s3, sfn = client("s3"), client("stepfunctions")
    report: dict[str, Any] = {"started": [], "duplicates": [], "ignored": []}
    if isinstance(event, dict) and event.get("action") == "sweep":  # the hourly schedule
        sweep(s3, sfn, report)
        return report
    records = event.get("Records") if isinstance(event, dict) else None
    units = [(r["messageId"], {"Records": [r]}) for r in records] \
        if records and all(isinstance(r, dict) and "messageId" in r for r in records) else [(None, event)]
    failures: list[dict[str, str]] = []
    for message_id, unit in units:
        try:
            for bucket, key, etag in parse_event(unit):  # S3, SQS, SNS or EventBridge
                _start(s3, sfn, bucket, key, etag, report)
        except Exception:
            if message_id is None:
                raise
            failures.append({"itemIdentifier": message_id})
    report["batchItemFailures"] = failures
    return report


# -- node ----------------------------------------------------------------------------------------
def node(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        action = event.get("action")
        if action == "process":
            return _process(event)
        if action == "unreadable":
            return _unreadable(event)
        raise ChuteError(f"unknown action {action!r} (process or unreadable)")
    except Exception as exc:
        if is_transient(exc):
            raise RetryStep(str(exc)) from exc
        raise


def _process(event: dict[str, Any]) -> dict[str, Any]:
    """Each key of the item: read, run the per-batch nodes, stage the tables' datasets. A bad file
    (FileError, TransformError) is recorded in its meta; anything else (out of memory, a bug)
    raises, and the state machine processes the item's files one at a time to find which."""
    staging = _staging(event)
    s3 = client("s3")
    done = 0
    for key in event["keys"]:
        slug = file_slug(key)
        if event.get("skip_done") and staging.has_meta(slug):
            continue
        _process_one(s3, staging, event["bucket"], key, slug)
        done += 1
    return {"processed": done}


def _process_one(s3, staging: Staging, bucket: str, key: str, slug: str) -> None:
    p = project()
    current_plan = plan()
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    meta: dict[str, Any] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
                            "mtime_ns": int(got["LastModified"].timestamp() * 1_000_000_000)}
    try:
        frames = list(numbered(read_source(pa.py_buffer(body), p.source, int(p.source.batch_mb * (1 << 20)))))
        import polars as pl

        frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        frame = frame.with_columns(pl.lit(_name_of(key) or key).alias(p.source.file_column))
        meta["rows_read"] = frame.height
        values = current_plan.run_batch(frame, static_values(), {})
        outputs = {table: as_frame(values[table], table) for table in p.tables}
    except FileError as exc:  # TransformError too: a node failed on this file
        staging.put_meta(slug, {**meta, "error": str(exc)})
        return
    for table, frame in outputs.items():
        staging.put_frame(slug, table, frame)
    staging.put_meta(slug, meta)


def _unreadable(event: dict[str, Any]) -> dict[str, Any]:
    """The files whose processing crashed the function: each recorded with the crash's error."""
    error = event.get("error") or {}
    message = str(error.get("Cause", ""))
    try:
        message = json.loads(message).get("errorMessage", message)
    except (ValueError, AttributeError):
        pass
    text = f"{error.get('Error', 'crashed')}: {message}"[:1000]
    staging = _staging(event)
    for key in event["keys"]:
        head = client("s3").head_object(Bucket=event["bucket"], Key=key)
        staging.put_meta(file_slug(key), {"sha256": "unread", "size": head["ContentLength"], "error": text,
                                          "mtime_ns": int(head["LastModified"].timestamp() * 1_000_000_000)})
    return {"unreadable": len(event["keys"])}


# -- load ----------------------------------------------------------------------------------------
def database_url() -> str:
    """The database's URL from its Secrets Manager secret (host, port, username, password, dbname:
    the shape RDS and the template's generated secret have).

    $CHUTE_DB_HOST, when set, wins over the secret's host (an RDS Proxy's endpoint; RDS's own
    managed secret, in the Terraform stack, has no host). With $CHUTE_DB_CA (the template sets it
    to the RDS CA bundle in the image), TLS is verified: sslmode=verify-full. With
    $CHUTE_DB_AUTH=iam, the password is an IAM token (rds generate-db-auth-token, valid 15 minutes,
    needed only to open the connection)."""
    from urllib.parse import quote

    secret = json.loads(client("secretsmanager").get_secret_value(SecretId=env_setting("db_secret"))["SecretString"])
    host = environ("CHUTE_DB_HOST") or secret.get("host")
    dbname = secret.get("dbname") or environ("CHUTE_DB_NAME") or "postgres"
    if not host:
        raise ChuteError("the database secret has no host and $CHUTE_DB_HOST is not set")
    port = int(secret.get("port") or 5432)
    password = secret.get("password", "")
    if environ("CHUTE_DB_AUTH") == "iam":
        password = client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=secret["username"])
    url = (f"postgresql://{quote(secret['username'], safe='')}:{quote(password, safe='')}"
           f"@{host}:{port}/{quote(dbname, safe='')}")
    ca = environ("CHUTE_DB_CA")
    if ca:
        url += f"?sslmode=verify-full&sslrootcert={quote(ca)}"
    return url


def load(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        action = event.get("action")
        if action == "begin":
            return _begin(event)
        if action == "load":
            return _load_item(event)
        if action == "finish":
            return _finish(event)
        raise ChuteError(f"unknown action {action!r} (begin, load or finish)")
    except Exception as exc:  # the database away or the pipeline's lock held: again; a wrong password: not
        if is_transient(exc):
            raise RetryStep(str(exc)) from exc
        raise


def _begin(event: dict[str, Any]) -> dict[str, Any]:
    from chute.deploy.aws.staged_load import begin

    return {"run_id": begin(project(), database_url(), event["execution"], trigger="s3")}


def _entry(bucket: str, key: str, meta: dict[str, Any]) -> FileEntry:
    return FileEntry(_name_of(key) or key, f"s3://{bucket}/{key}", int(meta.get("size") or 0),
                     int(meta.get("mtime_ns") or 0), key)


def _load_item(event: dict[str, Any]) -> dict[str, Any]:
    """One child's files, each in its own transaction; the result goes to S3, not into the state."""
    from chute.deploy.aws.staged_load import StagedFile, load_files

    staging = _staging(event)
    files = []
    for key in event["keys"]:
        slug = file_slug(key)
        meta = staging.get_meta(slug)
        files.append(StagedFile(_entry(event["bucket"], key, meta), meta, functools.partial(staging.get_frame, slug)))
    result = load_files(project(), database_url(), int(event["run_id"]), files)
    staging.put_result(int(event["index"]), result.to_dict())
    return {"files": len(files)}


FAILED_SAMPLE = 20  # failed files named in the state and the notification (the ledger has them all)


def _finish(event: dict[str, Any]) -> dict[str, Any]:
    """The children's results -> the run's counts. Files of an item that has no result (its child
    failed past its retries, and the Map tolerated it) are recorded failed."""
    from chute.deploy.aws.staged_load import finish, record_failed
    from chute.ledger.summary import FileOutcome, RunSummary

    p = project()
    staging = _staging(event)
    run_id = int(event["run_id"])
    db_url = database_url()
    summary = RunSummary(run_id, p.name, "succeeded", excluded=int(event.get("excluded") or 0))
    results = staging.results()
    missing: list[str] = []
    published = 0
    for index, item in enumerate(staging.get_manifest()):
        result = results.get(index)
        if result is None:
            missing += item["keys"]
            continue
        summary.files += [FileOutcome(**f) for f in result["files"]]
        summary.unchanged += result["unchanged"]
        published += result["published"]
    if missing:
        why = f"its child execution did not finish (map run {event.get('map_run') or '?'}); re-run the batch"
        entries = [(_entry(event["bucket"], key, {}), why) for key in missing]
        for name, (status, error) in record_failed(p, db_url, run_id, entries).items():
            summary.files.append(FileOutcome(name, status, error=error))
    if summary.count("failed"):
        summary.status = "failed"
    details = {"trigger": "s3", "execution": event.get("execution"), "items": len(results) + 0,
               "excluded": summary.excluded, "unchanged": summary.unchanged}
    if published:
        summary.chain = {"published": published}
    bucket = env_setting("staging_bucket")

    def export(path: str) -> S3Upload:  # the export file of `chute run`, in the staging bucket
        return S3Upload(client("s3"), bucket, EXPORTS_PREFIX + path.lstrip("/"))

    finish(p, db_url, run_id, summary, len(summary.files) + summary.unchanged, details, export)
    failed = [f for f in summary.files if f.status == "failed"]
    return {"status": summary.status, "run_id": run_id, "files_loaded": summary.count("loaded"),
            "files_with_rejects": summary.count("loaded_with_rejects"), "files_failed": len(failed),
            "files_skipped": summary.count("skipped"), "unchanged": summary.unchanged,
            "excluded": summary.excluded, "rows_loaded": summary.rows_loaded, "chain": summary.chain,
            "exports": [f"s3://{bucket}/{EXPORTS_PREFIX}{e.lstrip('/')}" for e in summary.exports][:20],
            "failed_sample": [{"name": f.name, "error": (f.error or "")[:300]} for f in failed[:FAILED_SAMPLE]]}


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
        sample = summary.get("failed_sample") or []
        for f in sample:
            lines.append(f"  failed: {f['name']}: {f.get('error')}")
        more = int(summary.get("files_failed") or 0) - len(sample)
        if more > 0:
            lines.append(f"  ... and {more} more failed files (chute status, or chute.files in the database)")
        if summary.get("error"):
            lines.append(f"error: {summary['error']}")
    error = execution.get("error")
    if error:
        lines.append(f"step failed: {error.get('Error')}: {str(error.get('Cause', ''))[:2000]}")
    if not summary and not error:
        lines.append(f"files: {execution.get('files', '?')}")
    subject = f"chute {project_name}: batch {outcome}"
    return subject[:100], "\n".join(lines)


def status_change(event: dict[str, Any]) -> dict[str, Any] | None:
    """An EventBridge "Step Functions Execution Status Change" (the execution status rule) -> the
    notify step's execution: a step that failed for good (a redrive resumes there). None for a
    ChuteFilesFailed execution: NotifyFailure already reported its counts."""
    detail = event.get("detail") or {}
    if detail.get("error") == "ChuteFilesFailed":
        return None
    try:
        given = json.loads(detail.get("input") or "{}")
    except ValueError:
        given = {}
    arn = detail.get("executionArn", "?")
    return {"batch_id": given.get("batch_id") or detail.get("name"), "bucket": given.get("bucket"),
            "event_key": given.get("event_key"), "manifest": given.get("manifest"), "execution": detail.get("name"),
            "files": given.get("files"),
            "error": {"Error": detail.get("error") or detail.get("status"),
                      "Cause": f"{detail.get('cause') or ''} (redrive: aws stepfunctions redrive-execution "
                               f"--execution-arn {arn})"}}


def notify(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if event.get("detail-type") == "Step Functions Execution Status Change":
        execution = status_change(event)
        if execution is None:
            return {"published": None, "parked": None, "woken": None}
        event = {"outcome": "failed", "execution": execution}
    outcome = event.get("outcome", "failed")
    execution = event.get("execution") or {}
    subject, body = message(project().name, outcome, execution)
    published = client("sns").publish(TopicArn=env_setting("topic"), Subject=subject, Message=body)
    woken = wake_followers(project().name, execution)
    parked = None
    if outcome != "succeeded":  # coordinates and counts only: the manifest and the ledger have the rest
        keep = {k: execution.get(k) for k in ("batch_id", "bucket", "event_key", "manifest", "execution", "error")}
        keep["summary"] = execution.get("summary") or {}
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


# -- extract -------------------------------------------------------------------------------------
def extract(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """A scheduled extraction (EventBridge Scheduler): `chute extract NAME...` into the landing
    bucket, then a .SUCCESS marker in each folder it wrote, which starts that batch's load as
    any marker does. An extraction's watermark makes a retried fire take only what is still new."""
    from chute.extract import run_extracts

    names = [str(n) for n in event.get("extract") or []]
    if not names:
        return {"extracted": [], "markers": []}
    reports = run_extracts(stage_project(), names, db_url=database_url())
    folders = sorted({f.rsplit("/", 1)[0] for r in reports for f in r.files if "/" in f})
    s3, bucket = client("s3"), env_setting("landing_bucket")
    for folder in folders:
        s3.put_object(Bucket=bucket, Key=f"{folder}/{MARKER}", Body=b"")
    failed = [f"{r.name}: {r.error}" for r in reports if not r.ok]
    if failed:  # the others' files are marked and load; this fire is retried, then dead-lettered
        raise ChuteError("extraction failed: " + "; ".join(failed)[:2000])
    return {"schedule": event.get("schedule"), "fire": event.get("fire"),
            "extracted": [{"name": r.name, "rows": r.rows, "files": len(r.files)} for r in reports],
            "markers": folders}


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

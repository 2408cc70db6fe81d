"""moto's server for the AWS deployment tests, with Step Functions executing for real and
Lambda functions run in this process by chute's handlers (Docker, which moto's Lambda
needs, cannot run here).

The server is moto's ThreadedMotoServer: a real HTTP endpoint on a free loopback port,
served from a thread of the test process, so patching moto's LambdaFunction._invoke_lambda
here also serves the Task states of executions.
"""

from __future__ import annotations

import importlib
import json
import os
import traceback
import urllib.request

import pytest

REGION = "us-east-1"
# The largest event a handler was given or returned (bytes): children's histories cannot be read in
# moto (list_executions(mapRunArn=...) fails there), so their payloads are measured here.
LARGEST_PAYLOAD = [0]


@pytest.fixture(scope="session")
def sfn_moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)  # where moto's Step Functions sends its Lambda calls
    request = urllib.request.Request(f"{url}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode())
    urllib.request.urlopen(request).read()
    yield url
    server.stop()
    if saved is None:
        os.environ.pop("MOTO_PORT", None)
    else:
        os.environ["MOTO_PORT"] = saved


@pytest.fixture
def sfn_aws(sfn_moto_server, monkeypatch):
    """boto3 (and chute's handlers) talk to the moto server; its state is reset after the test."""
    for name, value in {"AWS_ENDPOINT_URL": sfn_moto_server, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                        "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield sfn_moto_server
    urllib.request.urlopen(urllib.request.Request(f"{sfn_moto_server}/moto-api/reset", method="POST")).read()


def _run_handler(function, event):
    """Stands in for moto's LambdaFunction._invoke_lambda: call the function's handler here.

    The function's environment variables are the handler's for the call (handlers.ENVIRONMENT_OF_CALL).
    An exception
    becomes Lambda's error payload, whose errorType the state machine's Retry and Catch match.
    """
    module_name, _, attribute = function.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    if isinstance(event, (str, bytes)):
        LARGEST_PAYLOAD[0] = max(LARGEST_PAYLOAD[0], len(event))
        event = json.loads(event or "{}")
    from chute.deploy.aws.handlers import ENVIRONMENT_OF_CALL

    # The function's own variables, exactly (not the union of the stack's): moto runs Task states on
    # threads of their own, so each call sees only what its function was created with.
    token = ENVIRONMENT_OF_CALL.set({k: str(v) for k, v in (function.environment_vars or {}).items()})
    try:
        result = json.dumps(handler(event, None), default=str)
        LARGEST_PAYLOAD[0] = max(LARGEST_PAYLOAD[0], len(result.encode()))
        return result, False, ""
    except Exception as exc:
        payload = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                   "stackTrace": traceback.format_exception(exc)}
        return json.dumps(payload), True, ""
    finally:
        ENVIRONMENT_OF_CALL.reset(token)


@pytest.fixture
def lambdas_in_process(sfn_aws, monkeypatch):
    from moto.awslambda.models import LambdaFunction

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", lambda self, event=None: _run_handler(self, event))
    return sfn_aws


# -- helpers of the end-to-end tests (plain functions) ---------------------------------------------
def placeholder_zip() -> bytes:
    """The code of a moto Lambda function: a placeholder, the handlers run in the test process."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("placeholder.py", "# the handlers run in the test process\n")
    return buffer.getvalue()


def drain(sqs, url: str) -> list[dict]:
    """Every message waiting in the queue, received and deleted."""
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return messages
        for m in got:
            messages.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def bodies(sqs, url: str) -> list[str]:
    return [m["Body"] for m in drain(sqs, url)]


def sqs_event(messages: list[dict]) -> dict:
    """The event Lambda's SQS event source mapping would deliver for these messages."""
    return {"Records": [{"eventSource": "aws:sqs", "messageId": m["MessageId"], "body": m["Body"]} for m in messages]}


def db_secret(secrets, db_url: str) -> str:
    """A Secrets Manager secret holding the test database's coordinates, as the stack's secret does."""
    from urllib.parse import urlparse

    db = urlparse(db_url)
    return secrets.create_secret(Name="db", SecretString=json.dumps({
        "host": db.hostname, "port": db.port, "username": db.username, "password": db.password,
        "dbname": db.path.lstrip("/")}))["ARN"]


def lambda_role(iam) -> str:
    """A role Lambda functions may assume (moto checks that one exists, not what it allows)."""
    return iam.create_role(RoleName="chute", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]


# -- the stack of a project in moto (the e2e tests, the scale test and benchmarks/bench_aws_scale.py) --
def template_of(model) -> dict:
    from chute.deploy.aws import sam

    return sam.template(model)


def resolved(value, values: dict, project_dir):
    """A value of the rendered template as moto's stack has it: Refs to the resources the stack
    created, the database created (CreateDb), the image's project folder -> the project's folder,
    and the image's RDS CA bundle -> none (the test server speaks no TLS: sslmode stays default)."""
    from chute.deploy.aws.model import PROJECT_DIR_IN_IMAGE, RDS_CA_IN_IMAGE

    if isinstance(value, str):
        return {PROJECT_DIR_IN_IMAGE: str(project_dir), RDS_CA_IN_IMAGE: ""}.get(value, value)
    if "Ref" in value:
        return values[value["Ref"]]
    if "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        return resolved(yes if condition in ("CreateDb", "WaitsForMarker") else no, values, project_dir)
    raise AssertionError(f"no moto value for {value!r}")


def stack_env(project_dir, secret: str, **more: str) -> dict[str, str]:
    """The CHUTE_* variables the template gives the functions (model.ENVIRONMENT), for moto's names."""
    return {"CHUTE_PROJECT_DIR": str(project_dir), "CHUTE_STAGING_BUCKET": "staging", "CHUTE_STAGING_PREFIX": "staging/",
            "CHUTE_LANDING_PREFIX": "", "CHUTE_DB_SECRET_ARN": secret, "CHUTE_WAIT_FOR_MARKER": "yes", **more}


def create_stack(model, project_dir, db_url: str, prefix: str = "stocks", markers_only: bool = False) -> dict:
    """In moto, the resources the template describes for `model`: the landing and staging buckets, the
    events queue (S3 notifications stand in for EventBridge here), the alert topic with an SQS inbox
    standing in for the email subscription, the failed-runs queue, the database secret, one function
    per model function and the state machine from the same definition the template renders.
    Sets the functions' variables in os.environ (the handlers also run in this process); returns the
    clients and names."""
    import boto3

    s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
    iam, lam, sfn, secrets = (boto3.client(n) for n in ("iam", "lambda", "stepfunctions", "secretsmanager"))
    s3.create_bucket(Bucket="landing")
    s3.create_bucket(Bucket="staging")
    events = sqs.create_queue(QueueName="events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # markers_only: what the template's rule passes with WaitForMarker=yes (a suffix filter here).
    only = {"Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".SUCCESS"}]}}} if markers_only else {}
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": events_arn, "Events": ["s3:ObjectCreated:*"], **only}]})
    failed_runs = sqs.create_queue(QueueName="failed-runs")["QueueUrl"]
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"})
    secret = db_secret(secrets, db_url)
    role = lambda_role(iam)
    chain_topic = sns.create_topic(Name=f"{prefix}-chain")["TopicArn"]
    env = stack_env(project_dir, secret, CHUTE_TOPIC_ARN=topic, CHUTE_FAILED_RUNS_QUEUE_URL=failed_runs)
    os.environ.update(env)
    machine_arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:{prefix}-pipeline"
    values = {"StagingBucket": "staging", "LandingBucket": "landing", "DbSecret": secret, "AlertTopic": topic,
              "FailedRunsQueue": failed_runs, "ChainTopic": chain_topic, "WaitForMarker": "yes",
              "PipelineStateMachine": machine_arn}
    resources = template_of(model)["Resources"]
    arns = {"staging_bucket": "staging"}
    for f in model.functions:
        own = {k: resolved(v, values, project_dir) for k, v in
               resources[f"{f.key.capitalize()}Function"]["Properties"]["Environment"]["Variables"].items()}
        arns[f.key] = lam.create_function(
            FunctionName=f"{prefix}-{f.key}", Runtime="python3.12", Role=role, Handler=f.command,
            Code={"ZipFile": placeholder_zip()}, Timeout=f.timeout_s, MemorySize=f.memory_mb,
            Environment={"Variables": own})["FunctionArn"]
    machine = sfn.create_state_machine(name=f"{prefix}-pipeline", definition=json.dumps(model.definition(arns)),
                                       roleArn=role)["stateMachineArn"]
    assert machine == machine_arn
    os.environ["CHUTE_STATE_MACHINE_ARN"] = machine
    from chute.deploy.aws import handlers

    for cached in (handlers._project, handlers._plan, handlers._static):
        cached.cache_clear()
    return {"s3": s3, "sqs": sqs, "sfn": sfn, "events": events, "failed_runs": failed_runs, "inbox": inbox,
            "machine": machine, "env": {**env, "CHUTE_STATE_MACHINE_ARN": machine}}


def finished(sfn, arn: str, timeout: float = 600) -> dict:
    """The execution once it is no longer running."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.1)
    raise AssertionError(f"execution {arn} still running after {timeout} s")


def history_stats(sfn, arn: str) -> tuple[int, int]:
    """The execution's history events and the largest state input, output or task parameters in it (bytes)."""
    events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
              for e in page["events"]]
    biggest = max((len(v[f].encode()) for e in events for k, v in e.items()
                   if k.endswith("EventDetails") and isinstance(v, dict)
                   for f in ("input", "output", "parameters") if isinstance(v.get(f), str)), default=0)
    return len(events), biggest


def put_batch(stack: dict, folder: str, paths, threads: int = 8) -> None:
    """The files under s3://landing/FOLDER/ (in a pool of threads), then the folder's .SUCCESS marker."""
    from concurrent.futures import ThreadPoolExecutor

    s3 = stack["s3"]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: s3.put_object(Bucket="landing", Key=f"{folder}/{p.name}", Body=p.read_bytes()), paths))
    s3.put_object(Bucket="landing", Key=f"{folder}/.SUCCESS", Body=b"")


def run_marker(stack: dict, timeout: float = 600) -> dict:
    """What the events queue holds -> the trigger (as its SQS event source delivers it) -> the one
    execution it starts, waited for. Returns the execution, its history's size and largest payload."""
    from chute.deploy.aws import handlers

    messages = drain(stack["sqs"], stack["events"])
    started: list[str] = []
    for i in range(0, len(messages), 10):  # BatchSize 10, as the event source mapping
        report = handlers.trigger(sqs_event(messages[i:i + 10]))
        assert not report["batchItemFailures"], report
        started += report["started"]
    assert len(started) == 1, started
    arn = stack["machine"].replace(":stateMachine:", ":execution:") + ":" + started[0]
    execution = finished(stack["sfn"], arn, timeout)
    events, biggest = history_stats(stack["sfn"], arn)
    return {"execution": execution, "arn": arn, "name": started[0], "events": events, "max_payload": biggest}

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
import threading
import traceback
import urllib.request

import pytest

REGION = "us-east-1"
_env_lock = threading.Lock()


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

    The function's environment variables are applied while it runs (one invocation at a time
    changes the environment; handlers of one stack share their values anyway). An exception
    becomes Lambda's error payload, whose errorType the state machine's Retry and Catch match.
    """
    module_name, _, attribute = function.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    with _env_lock:
        for name, value in (function.environment_vars or {}).items():
            os.environ[name] = str(value)
    try:
        return json.dumps(handler(event, None), default=str), False, ""
    except Exception as exc:
        payload = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                   "stackTrace": traceback.format_exception(exc)}
        return json.dumps(payload), True, ""


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

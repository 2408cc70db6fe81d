"""AWS for the tests: moto's server on a free loopback port, in this process.

`moto_server` (session) starts one ThreadedMotoServer for the whole test session. It runs in
this process on purpose: tests can patch moto's internals (for example
`LambdaFunction._invoke_lambda` to run Lambda handlers in-process, since Docker is absent).

`aws` (per test) resets moto's state, points boto3 at the server through the standard
environment variables (fake credentials, AWS_ENDPOINT_URL, a region) and returns a small
helper with `.client(name)`, `.resource(name)`, `.endpoint` and `.region`.

`s3_bucket` (per test) is a fresh, uniquely named bucket.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

REGION = "us-east-1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (servers that refuse port=0 need one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Aws:
    endpoint: str
    region: str = REGION

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint, **kwargs)

    def resource(self, service: str, **kwargs):
        import boto3

        return boto3.resource(service, region_name=self.region, endpoint_url=self.endpoint, **kwargs)

    def reset(self) -> None:
        """Forget every bucket, queue, topic... (moto's own reset endpoint)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"),
                               timeout=30).close()


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE",
                    "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path) -> Aws:
    """moto's server, reset, with boto3 pointed at it through the standard env variables."""
    for name in AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # Never read a developer's ~/.aws files during tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    helper = Aws(moto_server)
    helper.reset()
    return helper


@pytest.fixture
def s3_bucket(aws) -> str:
    name = f"chute-test-{uuid.uuid4().hex[:12]}"
    aws.client("s3").create_bucket(Bucket=name)
    return name


def upload_folder(client, folder, bucket: str, prefix: str) -> list[str]:
    """Put every file under `folder` at s3://bucket/prefix/<relative path>; returns the keys."""
    from pathlib import Path

    keys = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            key = f"{prefix.strip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
    return keys


def use_landing(project_dir, url: str, extra: str = "") -> None:
    """Point a project's [landing] path at `url` (and append `extra` TOML to chute.toml)."""
    import re
    from pathlib import Path

    config = Path(project_dir) / "chute.toml"
    text = re.sub(r'(?m)^path = ".*"$', f'path = "{url}"', config.read_text(), count=1)
    config.write_text(text + ("\n" + extra if extra else ""))

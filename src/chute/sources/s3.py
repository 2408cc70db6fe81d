"""A landing zone in S3: `[landing] path = "s3://bucket/prefix"`.

boto3 finds everything else the standard way: credentials from the environment, a profile
or the instance/task role (never from chute.toml), the region from AWS_REGION /
AWS_DEFAULT_REGION, and the endpoint from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), which
is how the tests point it at moto's server. Throttling and network errors are retried by
botocore's standard retry mode.

A file's ledger name is its key relative to the prefix, so a project can move between a
folder and a bucket without reloading anything. Objects are streamed: `open()` returns the
HTTP body, read in blocks by the CSV reader.

The ledger's unchanged-file check compares size and mtime_ns. S3's LastModified has at best
millisecond precision, so an object overwritten within the same millisecond with the same
size would look unchanged: mtime_ns therefore carries LastModified to the millisecond plus a
fingerprint of the ETag (the object's content tag) in its sub-millisecond digits.
"""

from __future__ import annotations

import fnmatch
import hashlib
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlparse

import pyarrow as pa

from chute.errors import ConfigError, LandingZoneError, LandingZoneUnavailable
from chute.sources.base import FileEntry, is_ignored

SCHEME = "s3://"


def is_s3_url(path: str) -> bool:
    return path.startswith(SCHEME)


def parse_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ('bucket', 'some/prefix/'); the prefix is '' or ends in '/'."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return parsed.netloc, prefix


def s3_client(service: str = "s3"):
    """A boto3 client configured only from the environment / instance role."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client(service, config=config)


def mtime_ns_of(last_modified: datetime, etag: str) -> int:
    millis = int(last_modified.timestamp() * 1000)
    fingerprint = int.from_bytes(hashlib.blake2b(etag.encode(), digest_size=8).digest(), "big") % 1_000_000
    return millis * 1_000_000 + fingerprint


def describe_aws_error(exc: Exception) -> str:
    """One line a person can act on, for the errors boto3 raises."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or run with an instance/task role")
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message') or exc}"
    return str(exc)


class S3Zone:
    def __init__(self, url: str, patterns: list[str], recursive: bool = True, *, marker: str | None = None,
                 exclude: tuple[str, ...] = (), client: Any = None):
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.patterns = patterns
        self.recursive = recursive
        self.marker = marker  # when set, only folders holding this marker object are listed
        self.exclude = exclude  # bucket keys under these prefixes are never landing files (run logs)
        self.client = client or s3_client()

    def uri_of(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def objects(self) -> list[dict]:
        """Every object under the prefix (and the batch folder, if narrowed): raw listing."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[dict] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix):
                found.extend(page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            from chute.retry import is_transient

            kind = LandingZoneUnavailable if is_transient(exc) else LandingZoneError
            raise kind(f"cannot list {self.url}: {describe_aws_error(exc)}") from None
        return [o for o in found if not o["Key"].startswith(self.exclude)]

    def list(self) -> list[FileEntry]:
        objects = self.objects()
        complete = None
        if self.marker:
            complete = {self._folder(o["Key"][len(self.prefix):]) for o in objects
                        if o["Key"].rsplit("/", 1)[-1] == self.marker}
        entries = []
        for obj in objects:
            name = obj["Key"][len(self.prefix):]
            if not name or name.endswith("/"):
                continue
            parts = name.split("/")
            if (len(parts) > 1 and not self.recursive) or any(is_ignored(p) for p in parts):
                continue
            if parts[-1] == self.marker or not any(fnmatch.fnmatch(parts[-1], p) for p in self.patterns):
                continue
            if complete is not None and not _in_any(self._folder(name), complete):
                continue  # its batch has no marker yet
            entries.append(FileEntry(name, self.uri_of(name), obj["Size"],
                                     mtime_ns_of(obj["LastModified"], obj.get("ETag", "")), obj["Key"]))
        entries.sort(key=lambda e: e.name)
        return entries

    @staticmethod
    def _folder(name: str) -> str:
        return name.rsplit("/", 1)[0] + "/" if "/" in name else ""

    def read(self, entry: FileEntry) -> pa.Buffer:
        with self.open(entry) as body:
            return pa.py_buffer(body.read())

    def open(self, entry: FileEntry) -> BinaryIO:
        """The object's bytes as a stream (botocore's StreamingBody), read in blocks by the caller."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=entry.location)["Body"]
        except (BotoCoreError, ClientError) as exc:
            # OSError is what the runner records as "cannot read the file" for this file alone.
            raise OSError(f"{entry.uri}: {describe_aws_error(exc)}") from None

    def local_path(self, entry: FileEntry) -> str | None:
        return None  # not on this disk: stream it with open()

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> str:
        """Write a small object (a run log) at `key` in the bucket; returns its s3:// URI."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise LandingZoneError(f"cannot write s3://{self.bucket}/{key}: {describe_aws_error(exc)}") from None
        return f"s3://{self.bucket}/{key}"


def _in_any(folder: str, complete: set[str]) -> bool:
    """A file belongs to a complete batch when its folder, or a folder above it, holds the marker."""
    return any(folder.startswith(done) for done in complete)

"""Datasets between Lambda tasks: Parquet objects under the staging prefix.

    <prefix><batch id>/<file slug>/<dataset>.parquet   one per dataset of the file
    <prefix><batch id>/<file slug>/_meta.json          sha256 and row count, or the file's error
    <prefix><batch id>/_manifest.json                  the batch's items: [{"keys": [...]}, ...] (the trigger)
    <prefix><batch id>/_results/<item index>.json      what the child of that item loaded (its Load step)

Keys derive from the batch (the execution name) and the file, so a task needs only those
coordinates to find its inputs, and a retried task overwrites what it wrote before.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import polars as pl


def file_slug(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class Staging:
    def __init__(self, s3: Any, bucket: str, prefix: str, batch_id: str):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.batch_id = batch_id

    def key(self, slug: str, name: str) -> str:
        return f"{self.prefix}{self.batch_id}/{slug}/{name}"

    def put_frame(self, slug: str, dataset: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd")
        self.s3.put_object(Bucket=self.bucket, Key=self.key(slug, f"{dataset}.parquet"), Body=buffer.getvalue())

    def get_frame(self, slug: str, dataset: str) -> pl.DataFrame:
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key(slug, f"{dataset}.parquet"))["Body"].read()
        return pl.read_parquet(io.BytesIO(body))

    def put_meta(self, slug: str, meta: dict[str, Any]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.key(slug, "_meta.json"), Body=json.dumps(meta).encode())

    def has_meta(self, slug: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(slug, "_meta.json"))
        except Exception as exc:  # botocore's ClientError 404
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}{self.batch_id}/_manifest.json"

    def put_manifest(self, items: list[dict[str, Any]]) -> dict[str, str]:
        """The batch's items, where the state machine's ItemReader reads them; returns its coordinates."""
        self.s3.put_object(Bucket=self.bucket, Key=self.manifest_key, Body=json.dumps(items).encode(),
                           ContentType="application/json")
        return {"bucket": self.bucket, "key": self.manifest_key}

    def get_manifest(self) -> list[dict[str, Any]]:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=self.manifest_key)["Body"].read())

    def put_result(self, index: int, result: dict[str, Any]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}{self.batch_id}/_results/{int(index)}.json",
                           Body=json.dumps(result).encode())

    def results(self) -> dict[int, dict[str, Any]]:
        """Every child's result so far, by item index (a few hundred small objects, read in a pool)."""
        from concurrent.futures import ThreadPoolExecutor

        prefix = f"{self.prefix}{self.batch_id}/_results/"
        keys = [o["Key"] for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                for o in page.get("Contents", [])]

        def read(key: str) -> tuple[int, dict[str, Any]]:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return int(key[len(prefix):].split(".")[0]), json.loads(body)

        with ThreadPoolExecutor(16) as pool:
            return dict(pool.map(read, keys))

    def get_meta(self, slug: str) -> dict[str, Any]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key(slug, "_meta.json"))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return {"error": "the file was never read (its Read task did not run)"}
        return json.loads(body)


class S3Upload:
    """A binary writer to an S3 object, in multipart parts of `part_bytes` (memory stays at one
    part whatever the object's size): for the tables' exports."""

    def __init__(self, s3: Any, bucket: str, key: str, part_bytes: int = 8 << 20):
        self.s3, self.bucket, self.key, self.part_bytes = s3, bucket, key, part_bytes
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.upload_id: str | None = None

    def write(self, data) -> int:
        self.buffer += data
        if len(self.buffer) >= self.part_bytes:
            self._part()
        return len(data)

    def _part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        got = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                  Body=bytes(self.buffer))
        self.parts.append({"PartNumber": number, "ETag": got["ETag"]})
        self.buffer.clear()

    def close(self) -> None:
        if self.upload_id is None:  # small: one PUT
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._part()
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                          MultipartUpload={"Parts": self.parts})

    def abort(self) -> None:
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)

"""Datasets between Lambda tasks: Parquet objects under the staging prefix.

    <prefix><batch id>/<file slug>/<dataset>.parquet   one per dataset of the file
    <prefix><batch id>/<file slug>/_meta.json          sha256 and row count, or the file's error

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

    def get_meta(self, slug: str) -> dict[str, Any]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key(slug, "_meta.json"))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return {"error": "the file was never read (its Read task did not run)"}
        return json.loads(body)

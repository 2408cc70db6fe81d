"""A webhook: a Slack-compatible JSON POST (text + one attachment) via urllib."""

from __future__ import annotations

import json
import os
import urllib.request

from chute.errors import ConfigError


def url_of(cfg) -> str:
    if cfg.url_env:
        value = os.environ.get(cfg.url_env)
        if not value:
            raise ConfigError(f"webhook notification: environment variable {cfg.url_env} is not set")
        return value
    return cfg.url


def payload(subject: str, body: str, fields: dict[str, str]) -> dict:
    ok = fields.get("status") == "succeeded"
    facts = [("Pipeline", "pipeline"), ("Status", "status"), ("Files loaded", "files_loaded"),
             ("Files failed", "files_failed"), ("Rows loaded", "rows_loaded"), ("Duration (s)", "duration")]
    return {
        "text": subject,
        "attachments": [{
            "color": "good" if ok else "danger",
            "title": subject,
            "text": body,
            "fields": [{"title": title, "value": fields.get(key, ""), "short": True} for title, key in facts],
        }],
    }


def send(cfg, subject: str, body: str, fields: dict[str, str]) -> None:
    data = json.dumps(payload(subject, body, fields)).encode("utf-8")
    request = urllib.request.Request(url_of(cfg), data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "chute"})
    with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
        response.read()

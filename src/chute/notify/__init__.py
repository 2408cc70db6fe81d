"""Notifications after each run: email (SMTP), Amazon SNS, a webhook (Slack-compatible JSON).

Configured by [[notify]] entries in chute.toml (docs/notifications.md). A notification that
fails is retried a few times with backoff, then logged and given up: it never fails the run.
Messages are redacted (passwords in URLs, key=value secrets, and the values of every
environment variable a [[notify]] entry names) before they leave the process.
"""

from __future__ import annotations

import logging
import time

from chute.notify.message import DEFAULT_BODY, DEFAULT_SUBJECT, project_secrets, redact, render, run_fields

__all__ = ["notify_run", "wanted"]

log = logging.getLogger("chute.notify")
BACKOFF = 0.5  # seconds before the second try; doubles each time


def wanted(cfg, ok: bool) -> bool:
    return cfg.on == "always" or (cfg.on == "success") == ok


def notify_run(project, summary, log_uri: str = "", trigger: str = "manual") -> list[dict]:
    """Send every configured notification for this run; returns what happened to each."""
    results = []
    for cfg in project.notify:
        if not wanted(cfg, summary.ok):
            continue
        secrets = project_secrets(project)  # of every entry: one entry's error may quote another's secret
        target = _describe(cfg)
        try:
            fields = run_fields(summary, log_uri, trigger, secrets)
            subject = redact(render(cfg.subject, DEFAULT_SUBJECT, fields), secrets)
            body = redact(render(cfg.body, DEFAULT_BODY, fields), secrets)
        except Exception as exc:
            results.append(_gave_up(target, 0, redact(str(exc), secrets)))
            continue
        results.append(_send_with_retries(cfg, target, subject, body, fields, secrets))
    return results


def _send_with_retries(cfg, target, subject, body, fields, secrets) -> dict:
    from chute.errors import ConfigError

    delay = BACKOFF
    for attempt in range(1, cfg.attempts + 1):
        try:
            _send(cfg, subject, body, fields)
            log.info("notified %s (%s)", target, subject)
            return {"kind": cfg.kind, "to": target, "ok": True, "attempts": attempt, "subject": subject}
        except ConfigError as exc:  # a missing variable will not appear by retrying
            return _gave_up(target, attempt, redact(str(exc), secrets), cfg.kind)
        except Exception as exc:  # network, SMTP refusal, HTTP error, AWS error: retry, bounded
            message = redact(f"{type(exc).__name__}: {exc}", secrets)
            if attempt == cfg.attempts:
                return _gave_up(target, attempt, message, cfg.kind)
            log.warning("notification to %s failed (attempt %d of %d): %s", target, attempt, cfg.attempts, message)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _send(cfg, subject: str, body: str, fields: dict[str, str]) -> None:
    if cfg.kind == "email":
        from chute.notify import email

        email.send(cfg, subject, body)
    elif cfg.kind == "sns":
        from chute.notify import sns

        sns.send(cfg, subject, body)
    else:
        from chute.notify import webhook

        webhook.send(cfg, subject, body, fields)


def _describe(cfg) -> str:
    if cfg.kind == "email":
        return f"email {', '.join(cfg.to)}"
    if cfg.kind == "sns":
        return f"sns {cfg.topic_arn}"
    return f"webhook ${cfg.url_env}" if cfg.url_env else "webhook (url in chute.toml)"


def _gave_up(target: str, attempts: int, message: str, kind: str = "") -> dict:
    log.error("notification to %s given up after %d attempt(s): %s", target, attempts, message)
    return {"kind": kind, "to": target, "ok": False, "attempts": attempts, "error": message}

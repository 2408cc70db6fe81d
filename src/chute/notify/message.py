"""What a notification says: the facts of a run, rendered through string.Template.

Templates use $name or ${name} with these fields (an unknown name is a configuration error):

    pipeline      the pipeline (project) name
    status        succeeded | failed
    outcome       Success | Failure   (e.g. subject = "First_Last_Pipeline_${outcome}")
    run_id        the run's number in the ledger
    trigger       what started the run: manual, folder, s3, marker, schedule, ...
    files         files looked at in this run (loaded + failed + skipped)
    files_loaded, files_failed, files_skipped, files_unchanged
    rows_loaded, rows_rejected
    duration      seconds, e.g. 1.23
    errors        the first errors, one per line ("none" when there are none)
    error         the run's own error (or empty)
    host          the machine that ran it
    log           where the run's JSON log was written (or empty)
"""

from __future__ import annotations

import os
import re
import socket
from string import Template
from typing import Any

from chute.errors import ConfigError

DEFAULT_SUBJECT = "[chute] $pipeline run $run_id $status: $files_loaded loaded, $files_failed failed"
DEFAULT_BODY = """\
Pipeline:  $pipeline
Status:    $status
Run:       $run_id (trigger: $trigger, host: $host)
Files:     $files ($files_loaded loaded, $files_failed failed, $files_skipped skipped, $files_unchanged unchanged)
Rows:      $rows_loaded loaded, $rows_rejected rejected
Duration:  ${duration}s
Log:       $log

First errors:
$errors
"""

MAX_ERRORS = 5

# user:password@ in any URL (postgresql://, https://, smtp://...)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@/\s]*@")
# password=... in libpq key/value strings and query strings
_KEY_PASSWORD = re.compile(r"(?i)(password|passwd|pwd|secret|token)=([^\s&;'\"]+)")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove passwords from URLs and key=value strings, and any of `secrets` verbatim."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    text = _KEY_PASSWORD.sub(r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def first_errors(summary) -> list[str]:
    errors = [summary.error] if summary.error else []
    errors += [f"{f.name}: {f.error}" for f in summary.files if f.status == "failed" and f.error]
    return errors[:MAX_ERRORS]


def run_fields(summary, log: str = "", trigger: str = "manual", secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """The template fields of a finished run, every value redacted."""
    errors = first_errors(summary)
    rows_rejected = sum(getattr(f, "rows_rejected", 0) or 0 for f in summary.files)
    values: dict[str, Any] = dict(
        pipeline=summary.pipeline, status=summary.status, outcome="Success" if summary.ok else "Failure",
        run_id=summary.run_id if summary.run_id is not None else "-", trigger=trigger,
        files=len(summary.files), files_loaded=summary.count("loaded"), files_failed=summary.count("failed"),
        files_skipped=summary.count("skipped"), files_unchanged=summary.unchanged,
        rows_loaded=summary.rows_loaded, rows_rejected=rows_rejected, duration=f"{summary.seconds:.2f}",
        errors="\n".join(f"- {e}" for e in errors) or "none", error=summary.error or "", host=socket.gethostname(),
        log=log,
    )
    return {k: redact(str(v), secrets) for k, v in values.items()}


def render(template: str | None, default: str, fields: dict[str, str]) -> str:
    try:
        return Template(template or default).substitute(fields)
    except (KeyError, ValueError) as exc:  # checked at load time; kept for templates built in code
        raise ConfigError(f"notification template: {exc}") from None


def project_secrets(project) -> tuple[str, ...]:
    """Every value the project's configuration points at as a secret: the variables named by
    [[notify]] entries and [database] url = "env:VAR", and literal webhook URLs."""
    names: list[str | None] = []
    for cfg in project.notify:
        names += [cfg.username_env, cfg.password_env, cfg.url_env]
    url = project.database.url or ""
    if url.startswith("env:"):
        names.append(url[4:])
    return env_secrets(*names) + tuple(cfg.url for cfg in project.notify if cfg.url)


def env_secrets(*names: str | None) -> tuple[str, ...]:
    """Values of the named environment variables: never to be shown anywhere."""
    return tuple(v for n in names if n and (v := os.environ.get(n)))

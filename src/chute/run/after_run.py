"""What happens after every run, whoever started it (`chute run`, `chute watch`, the AWS
handlers): the run's JSON log, then notifications. Nothing here may fail the run: every
problem is logged (redacted) and swallowed."""

from __future__ import annotations

import logging

log = logging.getLogger("chute.after_run")


def after_run(project, summary, zone, trigger: str = "manual") -> None:
    from chute.notify.message import project_secrets, redact

    secrets = project_secrets(project)
    where = ""
    if project.run_log.enabled and summary.run_id is not None:
        try:
            from chute.run import runlog

            where = runlog.write(project, summary, zone, trigger)
            summary.log = where
        except Exception as exc:
            log.error("could not write the run log of run %s: %s", summary.run_id, redact(str(exc), secrets))
    if project.notify:
        try:
            from chute.notify import notify_run

            summary.notifications = notify_run(project, summary, where, trigger)
            if where:  # the run log also tells what was sent (the dashboard's run page shows it)
                from chute.run import runlog

                runlog.write(project, summary, zone, trigger)
        except Exception as exc:  # a bug in a notifier must not fail a run that loaded data
            log.error("notifications of run %s failed: %s", summary.run_id, redact(f"{type(exc).__name__}: {exc}", secrets))


def after_failed_start(project, error: str, trigger: str = "manual") -> None:
    """A run that could not start (the database unreachable, a broken pipeline module): it has
    no ledger row and no run log, but the people in [[notify]] are still told."""
    from chute.ledger.summary import RunSummary

    after_run(project, RunSummary(run_id=None, pipeline=project.name, status="failed", error=error), None, trigger)

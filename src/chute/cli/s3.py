"""`chute s3 ...`: the SQS plumbing of an S3 landing zone. Registered at the end of cli.py."""

from __future__ import annotations

from pathlib import Path

import click

from chute.cli._common import EXIT_FAILED, emit_json, db_option, json_option, out, project_option


@click.group()
def s3() -> None:
    """S3 landing zones: event queue set-up, draining events, the dead-letter queue.

    \b
    With [landing] path = "s3://bucket/prefix" in chute.toml:
      chute s3 setup -p P        create the SQS queue, its dead-letter queue and the bucket notification
      chute watch -p P           run on every S3 event (and list now and then for missed ones)
      chute s3 drain -p P        or: handle the events waiting now, then exit (cron)
      chute s3 dead-letters -p P events that failed max_receive_count times
      chute s3 redrive -p P      send them back to the queue

    AWS credentials and region come from the environment or the instance role, never from
    chute.toml; AWS_ENDPOINT_URL points chute at another endpoint (e.g. moto or LocalStack).
    """


@s3.command()
@project_option
@json_option
def setup(project_dir: Path, as_json: bool) -> None:
    """Create (or bring up to date) the SQS queue, its dead-letter queue with a redrive
    policy, the queue policy and the bucket's ObjectCreated notification. Idempotent."""
    from chute.config.project import load_project
    from chute.watch.s3_queue import setup as do_setup

    info = do_setup(load_project(project_dir))
    if as_json:
        emit_json(info)
        return
    out.print(f"S3 events of s3://{info['bucket']}/{info['prefix']} -> {info['queue_url']}")
    out.print(f"after {info['max_receive_count']} failed receipts -> {info['dead_letter_queue_url']}")
    if info["created"]:
        out.print(f"created: {', '.join(info['created'])}")


@s3.command()
@project_option
@db_option
@click.option("--wait", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Seconds to wait for the first event (SQS long polling).")
@click.option("--max-messages", type=click.IntRange(1), default=1000, show_default=True,
              help="Take at most this many messages.")
@json_option
def drain(project_dir: Path, db_url: str | None, wait: int, max_messages: int, as_json: bool) -> None:
    """Handle the S3 events waiting in the queue now (one run per batch), then exit.

    A message is deleted only after the run covering it settled its files; otherwise it
    comes back and, after [s3] max_receive_count tries, lands in the dead-letter queue."""
    from chute.config.project import load_project
    from chute.db.resolve import resolve_database
    from chute.watch.s3 import drain as do_drain

    project = load_project(project_dir)
    info = do_drain(project, resolve_database(project, db_url, project_dir), wait=wait, max_messages=max_messages)
    if as_json:
        emit_json(info)
    else:
        out.print(f"{info['messages']} message(s), {len(info['runs'])} run(s)")
        for run in info["runs"]:
            out.print(f"  run {run['run_id']} ({run['trigger']}): {run['status']}"
                      + (f", {run.get('files_loaded', 0)} file(s) loaded" if run["run_id"] else "")
                      + (f" - {run['error']}" if run.get("error") else ""), highlight=False)
    if any(r["status"] != "succeeded" for r in info["runs"]):
        raise SystemExit(EXIT_FAILED)


@s3.command("dead-letters")
@project_option
@click.option("--limit", type=click.IntRange(1), default=10, show_default=True)
@json_option
def dead_letters(project_dir: Path, limit: int, as_json: bool) -> None:
    """Show S3 events in the dead-letter queue (they stay there)."""
    from chute.config.project import load_project
    from chute.watch.s3_queue import dead_letters as look

    found = look(load_project(project_dir), limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        out.print("The dead-letter queue is empty.")
    for item in found:
        out.print(f"{item['message_id']}: {', '.join(item['keys']) or '(no objects)'}", highlight=False, markup=False)


@s3.command()
@project_option
@click.option("--limit", type=click.IntRange(1), default=None, help="Move at most this many messages.")
@json_option
def redrive(project_dir: Path, limit: int | None, as_json: bool) -> None:
    """Move S3 events from the dead-letter queue back to the queue, to be tried again."""
    from chute.config.project import load_project
    from chute.watch.s3_queue import redrive as do_redrive

    info = do_redrive(load_project(project_dir), limit)
    if as_json:
        emit_json(info)
    else:
        out.print(f"moved {info['moved']} message(s) back to the queue")

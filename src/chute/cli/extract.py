"""`chute extract`: pull rows from databases and APIs into the landing zone. Registered at the end of cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chute.cli._common import data_table, escape, EXIT_FAILED, emit_json, db_option, err, json_option, out, project_option


@click.command("extract")
@project_option
@db_option
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--since", metavar="VALUE", help="Backfill: only rows whose cursor is >= VALUE (a timestamp such as "
              "2024-05-01 or 2024-05-01T12:00:00+02:00, or a number for a numeric cursor). The watermark stays.")
@click.option("--until", metavar="VALUE", help="Backfill: only rows whose cursor is < VALUE. The watermark stays.")
@json_option
def extract(project_dir: Path, db_url: str | None, names: tuple[str, ...], since: str | None, until: str | None,
            as_json: bool) -> None:
    """Run the [extract.NAME] extractions of chute.toml (all, or the NAMEs given).

    \b
    Each writes its rows as part files of [extract] batch_size rows into the landing zone,
    <into>/year=YYYY/month=MM/day=DD/hhmm=HHMM/<into>_partN.parquet (the run's start in UTC),
    then moves its watermark: the next run takes only rows past it. `chute run` loads the
    files. Exit status 1 when an extraction failed (the others still ran).

    \b
      chute extract -p shop                      every extraction, incrementally
      chute extract -p shop orders --since 2024-01-01 --until 2024-02-01   re-extract January
    """
    from chute.extract import run_extracts
    from chute.config.project import load_project
    from chute.db.resolve import resolve_database

    project = load_project(project_dir)
    if not project.extract:
        from chute.errors import ConfigError

        raise ConfigError("chute.toml configures no extraction: add an extract.NAME table (see docs/sources.md)")
    url = resolve_database(project, db_url, project_dir)
    reports = run_extracts(project, list(names) or None, since=since, until=until, db_url=url)
    if as_json:
        emit_json([r.to_dict() for r in reports])
    else:
        from chute.ledger.watermarks import describe  # here: psycopg is not imported at the CLI's start-up

        table = data_table("extraction", "rows", "files", "seconds", "watermark")
        for r in reports:
            mark = "unchanged (backfill)" if r.backfill else \
                (f"{len(r.keyed_watermarks)} key(s) moved" if r.keyed_watermarks else
                 "unchanged" if r.watermark_after == r.watermark_before else describe(r.watermark_after))
            table.add_row(r.name, f"{r.rows:,}", str(len(r.files)), f"{r.seconds:.2f}", mark)
        out.print(table)
        for r in reports:
            if r.error:
                err.print(f"[bold red]error:[/] extraction {escape(repr(r.name))}: {escape(r.error)}", highlight=False)
        if any(r.files for r in reports):
            out.print(f"Next: [bold]chute run --project {project_dir}[/] loads the new files")
    if any(r.error for r in reports):
        sys.exit(EXIT_FAILED)

"""What every `chute` command shares: the exit codes, the error handling, the common options,
JSON output and the run and replay reports. Each command group imports this module; none imports
another command module. Exit status: the EXIT_* table below.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

# Imports make objects by the hundred thousand and none of them is garbage: with the default
# threshold (700) the collector walks them again and again (~7% of a run with nothing new).
gc.set_threshold(100_000, 50, 100)
# numpy's OpenBLAS starts a spinning thread per core when numpy is imported (~0.1 CPU-s, taken
# from the server on a small machine); chute does no linear algebra.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Arrow's allocator (mimalloc) hands freed memory back to the kernel after 10 ms, and every
# block of a big file then faults it in again, zeroed (~0.08 CPU-s of 2 M rows); after 1 s it
# is still handed back, so an idle `chute watch` does not sit on it.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "1000")

import click

from chute.cli.console import data_table, err, escape, out
from chute.errors import ChuteError, ConfigError, DatabaseUnavailable

# The exit statuses of every command (README, "Exit status"; tests/test_exit_codes.py):
EXIT_OK = 0            # everything asked for was done
EXIT_FAILED = 1        # the command ran, but a file (or a chain message, a check) failed, or failed files
#                        are still waiting in the landing zone (chute run: see --ignore-old-failures)
EXIT_ERROR = 2         # the configuration, the command line or the data was refused: nothing was loaded
EXIT_UNAVAILABLE = 3   # the database could not be reached or went away: nothing was lost; try again later


class ChuteGroup(click.Group):
    """Turn every ChuteError into one clear line on stderr and exit status 2 (3 when the database
    is unavailable: a scheduler may simply try again)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ChuteError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            status = EXIT_UNAVAILABLE if isinstance(exc, DatabaseUnavailable) else EXIT_ERROR
            if ctx.meta.get(JSON_ASKED):  # a script reading stdout gets a document too
                emit_json({"error": str(exc), "exit_status": status})
            sys.exit(status)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


project_option = click.option(
    "--project", "-p", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
    show_default=True, help="The project folder (holding chute.toml).")
db_option = click.option(
    "--db", "db_url", metavar="URL", help="PostgreSQL URL. Default: $CHUTE_DATABASE_URL, else chute.toml, "
    "else the embedded cluster in PROJECT/.chute/pg.")
JSON_ASKED = "chute.json"  # ctx.meta key (shared by nested contexts): the command was given --json


def note_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[JSON_ASKED] = value
    return value


json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of tables.",
                           callback=note_json)
pipeline_option = click.option(
    "--pipeline", metavar="NAME", help="Another pipeline's ledger than the project's: a `chute load` into "
    "SCHEMA.TABLE is the pipeline load:SCHEMA.TABLE, which needs no chute.toml.")


def ledger_of(project_dir: Path, db_url: str | None, pipeline: str | None):
    """(the project, or None for --pipeline; the pipeline's name; its database URL)."""
    from chute.config.project import CONFIG_NAME, load_project
    from chute.db.resolve import resolve_database

    if not pipeline and not (project_dir / CONFIG_NAME).is_file():
        raise ConfigError(not_a_project(project_dir, db_url))
    project = None if pipeline else load_project(project_dir)
    return project, pipeline or project.name, resolve_database(project, db_url, project_dir)


def not_a_project(project_dir: Path, db_url: str | None) -> str:
    """The message for a command run without a chute.toml: where `chute load` ran, it names the
    --pipeline load:SCHEMA.TABLE ledgers that database has (`chute load` needs no project)."""
    from chute.db.embedded import cluster_of
    from chute.db.postgres import connect
    from chute.ledger import files as ledger

    message = f"no chute.toml in {project_dir.resolve()} (create a project with `chute init`)"
    url = db_url or os.environ.get("CHUTE_DATABASE_URL")
    if url is None:
        cluster = cluster_of(project_dir, chosen=folder_chosen())
        if not cluster.initialised:  # chute load never ran with this database: nothing to point at
            return message
        url = cluster.start()
    try:
        with connect(url) as conn:
            loads = [p for p in ledger.pipelines(conn) if p.startswith("load:")] if ledger.schema_exists(conn) else []
    except ChuteError:  # the database is away: the plain message
        return message
    if not loads:
        return message
    return (f"{message}; the loads of `chute load` in its database are ledgers of their own: "
            f"chute status --pipeline {loads[0]}" + (f" (it has {', '.join(loads)})" if len(loads) > 1 else ""))


def with_progress(work, quiet: bool):
    if quiet or not err.is_terminal:
        return work(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]loading"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
               TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=err.made(), transient=True) as bar:
        task = bar.add_task("run", total=None, rows=0)

        def progress(done: int, total: int, rows: int) -> None:
            bar.update(task, completed=done, total=total, rows=rows)

        return work(progress)


def report_schema(schema: dict) -> None:
    """The columns `chute load` reads (formats/infer.py Schema.as_dict): type, NULLs, markers, format, notes."""
    table = data_table("column", "type", "nulls", "null markers", "format", "note")
    for c in schema["columns"]:
        name = c["name"] + (f" ({c['original']})" if c.get("original") else "")
        markers = ", ".join(f"{m} x{n:,}" for m, n in (c.get("markers") or {}).items())
        nulls = f"{c['nulls']:,}" if c.get("nulls") is not None else ""
        table.add_row(name, c["type"], nulls, markers, c.get("format") or "", c.get("note") or "")
    out.print(table)
    shown = ", ".join(repr(m) for m in schema.get("null_values", [])) or "none (the format has its own null)"
    read = schema.get("format", "csv")
    if dialect := schema.get("dialect"):
        read += " (" + ", ".join(f"{k} {v!r}" + ("" if k in dialect.get("given", ()) else " sniffed")
                                 for k, v in dialect.items() if k != "given") + ")"
    out.print(f"read as {read}", highlight=False, markup=False)
    if schema.get("existing_table"):
        out.print(f"into the existing table; null markers: {shown}", highlight=False, markup=False)
    else:
        rows = schema.get("rows_sampled", 0)
        where = "the whole file" if schema.get("sample_is_whole_file") else f"the first {rows:,} rows"
        out.print(f"types and NULL counts from {where}; null markers: {shown}", highlight=False, markup=False)


def report_run(summary, as_json: bool, old_failures_fail: bool = True) -> None:
    """The run's summary, then its exit status: 1 when a file failed in this run or, unless
    `old_failures_fail` is off, when files that failed before are still there unchanged."""
    from chute.quality.quarantine import rejects_command

    if as_json:
        emit_json(summary.to_dict())
    else:
        loaded, failed, skipped = summary.count("loaded"), summary.count("failed"), summary.count("skipped")
        colour = "green" if summary.ok else "red"
        out.print(f"[bold {colour}]run {summary.run_id} {summary.status}[/] in {summary.seconds:.2f}s: "
                  f"{loaded} loaded, {failed} failed, {skipped} skipped, {summary.unchanged} unchanged"
                  + (f", {summary.excluded} excluded by a file filter" if summary.excluded else "")
                  + f"; {summary.rows_loaded:,} rows loaded"
                  + (" (" + ", ".join(f"{t} {n:,}" for t, n in summary.tables.items()) + ")"
                     if len(summary.tables) > 1 else "")
                  + (f", {summary.rows_rejected:,} rejected ({rejects_command(summary.pipeline)})"
                     if summary.rows_rejected else ""),
                  highlight=False)
        if not summary.rows_by_file:
            out.print("Rows per file are not known for files loaded together: the pipeline's nodes drop the "
                      "source_file column (keep it in the output to count rows per file; the run's totals are "
                      "exact).", highlight=False)
        if empty := summary.without_rows:
            out.print(f"{len(empty)} file(s) had no data rows (a header only, or empty) and loaded with 0 rows: "
                      + ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
                      + ("" if summary.pipeline.startswith("load:") else
                         " ([tables.NAME.contract] min_rows makes such a file fail)") + ".",
                      highlight=False, markup=False)
        problems = [f for f in summary.files if f.status in ("failed", "skipped")]
        if problems:
            table = data_table("file", "status", "reason")
            for f in problems[:50]:
                table.add_row(f.name, f.status, f.error or "")
            if len(problems) > 50:
                table.add_row(f"... {len(problems) - 50} more", "", "")
            out.print(table)
        if summary.pending_rejects:
            out.print(f"{summary.pending_rejects:,} record(s) of this file, quarantined when it was loaded, are still "
                      "pending: a load of the same content does not read them again; fix what refused them, then "
                      "add --replay to this command (chute rejects list shows why).", highlight=False)
        if summary.still_failed:
            out.print(f"{len(summary.still_failed)} file(s) failed earlier and are unchanged; fix or remove them, "
                      "or run with --retry-failed" + (" (exit status 1 while they wait)" if old_failures_fail else "")
                      + ".")
        for path in summary.exports:
            out.print(f"exported {path}", markup=False)
        if summary.error:
            err.print(f"[bold red]error:[/] {escape(summary.error)}", highlight=False)
    if summary.error and not summary.files and not summary.chain:  # it failed before it could load anything
        sys.exit(EXIT_ERROR)
    if not summary.ok or (old_failures_fail and summary.still_failed):
        sys.exit(EXIT_FAILED)


def report_replay(result, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"replay run {result.run_id}: {result.replayed} record(s) loaded", highlight=False)
    for f in result.files:
        still = f.get("records_still_failing")
        shown = ("records_replayed", "rows_loaded", "status", "error")
        line = f"  {f['file']}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in f.items()
                                              if k in shown and v is not None)
        if still:
            line += f"; {still} still failing: " + "; ".join(f.get("still_failing_because", {}))
        out.print(line, highlight=False)


def folder_chosen() -> bool:
    """Whether the command was given -p/--project (rather than running in the current folder)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source("project_dir") not in (None, ParameterSource.DEFAULT)

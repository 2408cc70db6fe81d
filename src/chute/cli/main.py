"""The `chute` command: its group and the core commands (init, run, status, load, db). The other
groups live in their own modules (watch, dlq, s3, ui, deploy, extract, rejects, replay) and are
registered at the end. Every reporting command takes --json.

Exit status: the table in cli/_common.py (0 done, 1 a file failed, 2 refused, 3 the database
is unavailable).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from chute import __version__
from chute.cli._common import (EXIT_FAILED, ChuteGroup, data_table, db_option, emit_json, escape, folder_chosen,
                               json_option, ledger_of, out, pipeline_option, project_option, report_replay,
                               report_run, report_schema, with_progress)
from chute.errors import ChuteError, ConfigError, RunInProgress


@click.group(cls=ChuteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chute")
def main() -> None:
    """chute: files land, a pipeline of Python nodes shapes them, PostgreSQL gets them exactly once.

    \b
    Start here:
      chute init mystocks --example stocks   a project with generated data
      chute run -p mystocks                  load everything new in its landing zone
      chute status -p mystocks               the ledger: files and runs
      chute load data.csv --into my_table    one file straight into a table
    """


# -- init -------------------------------------------------------------------------------------
@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--example", type=click.Choice(["stocks", "cafe", "workforce", "stream", "ingest", "retail", "kedro"]),
              default="stocks", show_default=True, help="Which example project to start from.")
@click.option("--files", type=click.IntRange(0), default=None,
              help="How many example files to generate into landing/ (0 for none; default: stocks 300, "
                   "cafe 40, workforce and kedro 4, stream 20; ingest: days of orders in its source database, 14; "
                   "retail: its three stages, its data comes from its API).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed for the generated data.")
@json_option
def init(folder: Path, example: str, files: int | None, seed: int, as_json: bool) -> None:
    """Create a project FOLDER from an example, with generated data to load."""
    from chute.examples.scaffold import create_project

    info = create_project(folder, example, files=files, seed=seed)
    if as_json:
        emit_json(info)
        return
    out.print(f"Created [bold]{escape(str(folder))}[/] from the {example} example: {', '.join(info['created'])}")
    if info["data"] and info["data"].get("message"):
        out.print(info["data"]["message"])
    elif info["data"]:
        out.print(f"Generated {info['data']['files']} files ({info['data']['rows']:,} rows) in {folder}/landing",
                  markup=False)
    out.print(f"Next: [bold]{escape(info['next'])}[/]")


# -- run --------------------------------------------------------------------------------------
@main.command()
@project_option
@db_option
@click.option("--retry-failed", is_flag=True, help="Also retry files that failed before with unchanged content.")
@click.option("--start-ts", metavar="TIME", help="Only files of partition folders (year=/month=/day=/hhmm=) at or "
              "after TIME (ISO, UTC unless an offset is given); other folders are not even listed.")
@click.option("--end-ts", metavar="TIME", help="Only files of partition folders before TIME.")
@click.option("--ignore-old-failures", is_flag=True,
              help="Exit 0 when this run loaded everything it tried, even if files that failed in an earlier run "
                   "are still waiting unchanged (by default they keep the exit status at 1, so that a scheduler "
                   "keeps seeing them).")
@json_option
def run(project_dir: Path, db_url: str | None, retry_failed: bool, start_ts: str | None, end_ts: str | None,
        ignore_old_failures: bool, as_json: bool) -> None:
    """Load everything new in the project's landing zone, exactly once.

    With --start-ts/--end-ts, only the files whose partition path falls in that window.

    \b
    Exit status: 0 all loaded; 1 a file failed, now or earlier and still unchanged;
    2 the configuration or command line is wrong; 3 the database is unavailable."""
    from chute.config.project import load_project
    from chute.run.runner import Runner
    from chute.db.resolve import resolve_database
    from chute.sources.partitions import window_option
    from chute.sources.selection import Selection

    project = load_project(project_dir)
    window = window_option(start_ts, end_ts)
    url = resolve_database(project, db_url, project_dir)
    try:
        summary = with_progress(lambda progress: Runner(project, url, retry_failed=retry_failed, progress=progress,
                                                         selection=Selection(window=window)).run(), quiet=as_json)
    except RunInProgress:  # not a failure: another run covers the files
        raise
    except ChuteError as exc:  # the run could not start; [[notify]] still hears of it
        from chute.run.after_run import after_failed_start

        after_failed_start(project, str(exc))
        raise
    report_run(summary, as_json, old_failures_fail=not ignore_old_failures)


# -- status -----------------------------------------------------------------------------------
@main.command()
@project_option
@db_option
@click.option("--runs", "limit", type=click.IntRange(1), default=10, show_default=True, help="How many runs to show.")
@pipeline_option
@json_option
def status(project_dir: Path, db_url: str | None, limit: int, pipeline: str | None, as_json: bool) -> None:
    """Show the ledger: files by state, the last runs, and files that failed.

    \b
      chute status                                 the project in this folder
      chute status --pipeline load:public.prices   the loads of `chute load ... --into prices`
    """
    from chute.ledger import files as ledger
    from chute.db.postgres import connect
    from chute.run.status import failures, listing, overview, overview_line

    project, name, url = ledger_of(project_dir, db_url, pipeline)
    conn = connect(url)
    with conn:
        ledger_there = ledger.schema_exists(conn)
        if not ledger_there:
            counts, runs = {}, []
        else:
            counts = ledger.file_counts(conn, name)
            runs = ledger.recent_runs(conn, name, limit)
        if pipeline and not counts and not runs:
            known = ledger.pipelines(conn) if ledger_there else []
            raise ConfigError(f"--pipeline {pipeline}: this database has no ledger rows for it; it has "
                              + (", ".join(known) if known else "none yet"))
        # What waits in the landing zone, and which failed files are gone from it: a project's
        # (a `chute load` has no landing zone: its failed files are just failed).
        entries = listing(project) if project else None
        failed = failures(conn, name, entries, limit=20)
        numbers = overview(project, conn, entries) if project else None
    if as_json:
        emit_json({"pipeline": name, "files": counts, "runs": runs, "failed_files": failed, "overview": numbers})
        return
    out.print(f"[bold]{escape(name)}[/]  files: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                                    or "none yet (chute run)"))
    if numbers:
        out.print(overview_line(numbers), highlight=False)
    if runs:
        table = data_table("run", "status", "started", "took", "loaded", "failed", "skipped", "rows")
        for r in runs:
            took = (r["ended_at"] - r["started_at"]).total_seconds() if r["ended_at"] else None
            table.add_row(str(r["run_id"]), r["status"], f"{r['started_at']:%m-%d %H:%M}",
                          f"{took:.2f}s" if took is not None else "-", str(r["files_loaded"]),
                          str(r["files_failed"]), str(r["files_skipped"]), f"{r['rows_loaded']:,}")
        out.print(table)
    if failed:
        table = data_table("failed file", "state", "run", "error")
        for f in failed:
            table.add_row(f["name"], f["state"], str(f["run_id"]), f["error"] or "")
        out.print(table)
        if any(f["state"] == "gone" for f in failed):
            out.print("gone: failed, then deleted from the landing zone; not counted as failing (`chute forget "
                      "--gone` records that in the ledger).", highlight=False)


# -- forget -----------------------------------------------------------------------------------
@main.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--gone", is_flag=True, help="Every failed file no longer in the landing zone.")
@click.option("--note", metavar="TEXT", help="Why, kept in the ledger with the resolution.")
@project_option
@db_option
@pipeline_option
@json_option
def forget(names: tuple[str, ...], gone: bool, note: str | None, project_dir: Path, db_url: str | None,
           pipeline: str | None, as_json: bool) -> None:
    """Resolve failed files: stop counting them as failing (chute status, the dashboard, chute
    run's exit status) and close their dead letters. Their ledger rows and errors stay, marked
    resolved; a changed file (new content) loads as usual, and --retry-failed still retries one.

    \b
      chute forget --gone              failed files since deleted from the landing zone
      chute forget bad.csv other.csv   these, deleted or not
    """
    from chute.db.postgres import connect
    from chute.ledger import files as ledger
    from chute.run.status import failures, forget as resolve, listing

    if bool(names) == gone:
        raise ConfigError("chute forget: give failed file NAME(s) or --gone (not both)")
    project, name, url = ledger_of(project_dir, db_url, pipeline)
    if gone and project is None:
        raise ConfigError("chute forget --gone needs a project's landing zone; with --pipeline, name the files")
    conn = connect(url)
    with conn:
        if not ledger.schema_exists(conn):
            raise ConfigError(f"{name}: no ledger in this database yet (nothing has run)")
        if gone:
            entries = listing(project)
            if entries is None:
                raise ConfigError("chute forget --gone: the landing zone cannot be listed now, so what is gone is not "
                                  "known; name the files instead")
            wanted = [f["name"] for f in failures(conn, name, entries) if f["state"] == "gone"]
        else:
            failing = {f["name"] for f in failures(conn, name, None)}
            if unknown := sorted(set(names) - failing):
                raise ConfigError(f"not a failed file of {name}: {', '.join(unknown)} (chute status lists them)")
            wanted = list(names)
        how = "forgotten with chute forget" + (" (gone from the landing zone)" if gone else "")
        done = resolve(conn, name, wanted, how + (f": {note}" if note else "")) if wanted else []
    if as_json:
        emit_json({"pipeline": name, "forgotten": done})
    else:
        out.print(f"forgot {len(done)} failed file(s)" + "".join(f"\n  {n}" for n in done), highlight=False)


# -- load -------------------------------------------------------------------------------------
@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--into", "table", required=True, metavar="[SCHEMA.]TABLE", help="Target table; created if missing.")
@click.option("--mode", type=click.Choice(["append", "replace", "merge"]), default="append", show_default=True)
@click.option("--primary-key", "primary_key", metavar="COL[,COL]", help="Key columns (needed for --mode merge).")
@click.option("--type", "types", multiple=True, metavar="COL=TYPE",
              help="Override an inferred column type of a table chute creates (an existing table keeps its types); "
              "repeatable.")
@click.option("--delimiter", help="The field delimiter (default: sniffed among , ; TAB |). One that splits no line "
              "while another would is refused.")
@click.option("--quote", help='The character that quotes a field (default: sniffed, usually ").')
@click.option("--encoding", help="The file's text encoding (default: sniffed: a byte-order mark, UTF-8, else cp1252).")
@click.option("--header/--no-header", default=None, help="Whether the first row names the columns (default: "
              "sniffed; without one, columns are named f0, f1, ...).")
@click.option("--columns", "select", metavar="COL[,COL]", help="Load only these columns (the file's names), e.g. "
              "to load a file wider than PostgreSQL's 1,600 columns.")
@click.option("--names", type=click.Choice(["normalize", "keep"]), default="normalize", show_default=True,
              help="normalize: column names in ASCII snake_case ('Culmen Length (mm)' -> culmen_length_mm), "
              "the file's name kept as the column's comment; keep: the file's names as they are.")
@click.option("--drift", type=click.Choice(["freeze", "evolve", "discard"]), default="freeze", show_default=True,
              help="Columns of the file that an existing table lacks: fail the file, add them to the table, or "
              "leave them out. Table columns the file lacks fail it (freeze) or stay NULL.")
@click.option("--batch-mb", type=click.FloatRange(1), default=64, show_default=True,
              help="Read the file in blocks of about this many MB (bounds memory).")
@click.option("--replay", is_flag=True, help="Load this file's quarantined records again, into the table as it "
              "is now (after ALTER TABLE ... TYPE ...), instead of loading the file.")
@click.option("--null", "nulls", multiple=True, metavar="TEXT",
              help="An unquoted value read as NULL; repeatable; replaces the default set (empty, NA, N/A, n/a, "
              "#N/A, NULL, null, NaN, nan, <NA>). An empty field is always NULL, a quoted one never.")
@click.option("--no-default-nulls", is_flag=True, help="Read only empty fields (and --null values) as NULL.")
@click.option("--date-format", "date_formats", multiple=True, metavar="COL=FORMAT",
              help="The date/time format of a column whose values do not settle it, e.g. day=%d/%m/%Y "
              "(strftime codes); repeatable.")
@click.option("--dry-run", is_flag=True, help="Show the schema chute would create (columns, types, NULLs, null "
              "markers, date formats) and load nothing.")
@click.option("--project", "-p", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="A project folder whose embedded database to use (none is needed: outside a "
              "project, chute load uses your default embedded database); its logs/ gets the run log.")
@db_option
@json_option
def load(file: Path, table: str, mode: str, primary_key: str | None, types: tuple[str, ...],
         delimiter: str | None, quote: str | None, encoding: str | None, header: bool | None, select: str | None,
         names: str, drift: str, batch_mb: float, replay: bool,
         nulls: tuple[str, ...], no_default_nulls: bool, date_formats: tuple[str, ...], dry_run: bool,
         project_dir: Path, db_url: str | None, as_json: bool) -> None:
    """Load one FILE into a table: infer the schema, create the table, load exactly once.

    The format comes from the content: CSV/TSV, JSON (an array of objects or an object holding
    one), JSON lines, Parquet, Excel; gzip, bz2, xz or zstd compressed too. A CSV file's
    delimiter, quote, header and encoding are sniffed unless given. Column names are
    normalised to snake_case (--names keep: as they are). Loading the same content again
    (under any name) does nothing. The column types are inferred from the first 16 MB of the
    file (numbers, booleans, dates and timestamps in the formats docs/reading-files.md lists);
    NA, NULL, NaN and the like are read as NULL. The schema is shown after the load
    (--dry-run: instead of it). A later value that does not
    fit its column is quarantined with its line and reason, and the other rows load. To
    load such records too, widen the column and replay them, e.g.:

    \b
      chute load prices.csv --into prices --dry-run
      chute load prices.csv --into prices
      chute rejects list --pipeline load:public.prices
      psql "$(chute db url)" -c 'ALTER TABLE prices ALTER COLUMN price TYPE double precision'
      chute load prices.csv --into prices --replay
    """
    from chute.run.load_file import load_file

    if delimiter is not None and len(delimiter) != 1 or quote is not None and len(quote) != 1:
        raise click.BadParameter("one character", param_hint="--delimiter" if delimiter and len(delimiter) != 1
                                 else "--quote")
    null_values = list(nulls) if nulls else [""] if no_default_nulls else None
    result = load_file(file, table, mode=mode, primary_key=primary_key.split(",") if primary_key else [],
                       types=types, delimiter=delimiter, quote=quote, encoding=encoding, header=header,
                       select=[c.strip() for c in select.split(",")] if select else None, names=names,
                       drift=drift, folder=project_dir, db_url=db_url, batch_mb=batch_mb, replay=replay,
                       null_values=null_values, date_formats=date_formats, dry_run=dry_run,
                       folder_chosen=folder_chosen())
    if dry_run:
        if as_json:
            emit_json({"dry_run": True, "table": table, "schema": result})
        else:
            out.print(f"{escape(file.name)} -> {escape(table)} (dry run: nothing loaded)", highlight=False)
            report_schema(result)
    elif replay:
        report_replay(result, as_json)
    else:
        if not as_json and result.schema:
            report_schema(result.schema)
        report_run(result, as_json)


# -- db ---------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The embedded PostgreSQL clusters chute runs when no database is configured: a project's own
    (PROJECT/.chute/pg), or outside a project this user's default cluster, which every
    `chute load` shares wherever it runs."""


def _embedded(project_dir: Path):
    from chute.db.embedded import cluster_of

    return cluster_of(project_dir, chosen=folder_chosen())


@db.command("start")
@project_option
@json_option
def db_start(project_dir: Path, as_json: bool) -> None:
    """Initialise (first time) and start the embedded cluster."""
    pg = _embedded(project_dir)
    pg.start()
    emit_json(pg.status()) if as_json else out.print(f"embedded PostgreSQL running on 127.0.0.1:{pg.port}")


@db.command("stop")
@project_option
@click.option("--all", "every", is_flag=True, help="Stop every cluster chute started (see chute db list).")
@json_option
def db_stop(project_dir: Path, every: bool, as_json: bool) -> None:
    """Stop the embedded cluster (its data stays)."""
    from chute.db.embedded import registered

    clusters = registered() if every else [_embedded(project_dir)]
    stopped = [str(pg.folder) for pg in clusters if pg.stop()]
    if as_json:
        emit_json({"stopped": bool(stopped)} if not every else {"stopped": stopped})
    elif every:
        out.print(f"stopped {len(stopped)} cluster(s)", highlight=False)
    else:
        out.print("stopped" if stopped else "not running")


@db.command("status")
@project_option
@json_option
def db_status(project_dir: Path, as_json: bool) -> None:
    """Whether the embedded cluster exists and runs (exit status 1 when it does not run)."""
    info = _embedded(project_dir).status()
    if as_json:
        emit_json(info)
    else:
        state = "running" if info["running"] else ("stopped" if info["initialised"] else "not created")
        out.print(f"embedded PostgreSQL in {info['folder']}: {state}"
                  + (f" on 127.0.0.1:{info['port']}" if info.get("port") and info["running"] else ""))
    if not info["running"]:
        sys.exit(EXIT_FAILED)


@db.command("url")
@project_option
def db_url_cmd(project_dir: Path) -> None:
    """Print the embedded cluster's URL (with its password), starting it if needed; e.g. psql "$(chute db url)"."""
    click.echo(_embedded(project_dir).start())


@db.command("list")
@json_option
def db_list(as_json: bool) -> None:
    """Every cluster chute created here: its project folder, data, port, state and size."""
    from chute.db.embedded import registered

    rows = [pg.describe() for pg in registered()]
    if as_json:
        emit_json(rows)
        return
    table = data_table("project", "state", "port", "size", "data")
    for r in rows:
        project = r["project"] + ("" if r["project_exists"] else "  (folder deleted: chute db prune)")
        table.add_row(project, r["state"], str(r["port"] or ""), f"{r['bytes'] / 1e6:,.1f} MB", r["data"])
    out.print(table if rows else "no embedded clusters")


@db.command("prune")
@click.option("--dry-run", is_flag=True, help="Only say which clusters would be removed.")
@json_option
def db_prune(dry_run: bool, as_json: bool) -> None:
    """Stop and delete the clusters whose project folder no longer exists (their data goes too)."""
    from chute.db.embedded import registered

    gone = [pg for pg in registered() if not pg.describe()["project_exists"]]
    if not dry_run:
        for pg in gone:
            pg.remove()
    removed = [str(pg.link.parent.parent) for pg in gone]
    if as_json:
        emit_json({"removed": removed, "dry_run": dry_run})
    else:
        verb = "would remove" if dry_run else "removed"
        out.print(f"{verb} {len(removed)} cluster(s)" + "".join(f"\n  {p}" for p in removed), highlight=False)


def entry() -> None:
    """The `chute` console script: the command, then a quick exit. Tearing the interpreter down
    (every module and object: ~0.2 s after a big run) does nothing for a command that is done,
    so the process ends at once, output flushed, unless a thread is still at work."""
    import logging
    import threading

    try:
        main()
        code = 0
    except SystemExit as exc:  # click ends every command this way
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe (chute status | head): what Python itself exits with then
        code = code or 120
    os._exit(code)


# Commands that live in their own modules (they import chute.cli._common, never this module).
from chute.cli.deploy import deploy  # noqa: E402
from chute.cli.extract import extract  # noqa: E402
from chute.cli.quality import rejects, replay  # noqa: E402
from chute.cli.s3 import s3  # noqa: E402
from chute.cli.ui import ui  # noqa: E402
from chute.cli.watch import dlq, watch  # noqa: E402

for _command in (watch, dlq, s3, ui, deploy, extract, rejects, replay):
    main.add_command(_command)

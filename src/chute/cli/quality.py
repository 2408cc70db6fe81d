"""`chute rejects list|show|export` and `chute replay`: the quarantine, for people."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chute.cli._common import (emit_json, ledger_of, report_replay, data_table, db_option, escape, json_option, out,
                  pipeline_option, project_option)

_filters = [
    click.option("--file", "file", metavar="NAME", help="Only rejects of this file (its name in the landing zone)."),
    click.option("--column", metavar="COLUMN", help="Only rejects about this column."),
    click.option("--reason", metavar="TEXT", help="Only rejects whose reason contains TEXT (any case)."),
    click.option("--check", "check", metavar="CHECK",
                 help="Only rejects of this check: parse, type, not_null, unique, min, max, allowed, regex, "
                      "length, or a rule's name."),
]


def filter_options(func):
    for option in reversed(_filters):
        func = option(func)
    return func


def _open(project_dir: Path, db_url: str | None, pipeline: str | None):
    """The pipeline's name and a connection to its database."""
    from chute.db.postgres import connect
    from chute.ledger import schema

    _, name, url = ledger_of(project_dir, db_url, pipeline)
    conn = connect(url)
    schema.ensure_schema(conn)
    return name, conn


@click.group()
def rejects() -> None:
    """Rows that failed a table's contract or could not be parsed, kept in chute.rejects.

    \b
      chute rejects list                       pending rejects, newest files last
      chute rejects list --file a.csv --column price
      chute rejects show 42                    one reject with its raw record
      chute rejects export rejects.csv         all matching rejects as CSV
      chute replay --file a.csv                load them again once fixed
      chute rejects list --pipeline load:public.prices    rejects of `chute load ... --into prices`
    """


@rejects.command("list")
@project_option
@db_option
@pipeline_option
@filter_options
@click.option("--state", type=click.Choice(["pending", "replayed", "discarded", "all"]), default="pending",
              show_default=True, help="Which rejects to show, by replay state.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--records", is_flag=True, help="Also show each reject's raw record (personal data masked).")
@json_option
def rejects_list(project_dir: Path, db_url: str | None, pipeline: str | None, file, column, reason, check,
                 state: str, limit: int, records: bool, as_json: bool) -> None:
    """List rejects, file by file: line, column, check, reason and value."""
    from chute.quality.quarantine import select_rejects

    name, conn = _open(project_dir, db_url, pipeline)
    with conn:
        rows = select_rejects(conn, name, state=state, file=file, column=column, reason=reason,
                              check=check, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no rejects match")
        return
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(r["file_name"], []).append(r)
    for name, found in by_file.items():
        rows_of = len({r["row_number"] for r in found})
        # The file's whole name on a line of its own: a table column would cut it.
        out.print(f"file [bold]{escape(name)}[/]: {rows_of} row(s), {len(found)} failed check(s)", highlight=False)
        table = data_table("id", "line", "column", "check", "reason", "value", "state")
        table.columns[4].overflow = "fold"  # reasons wrap within the terminal's width, never cut
        for r in found:
            where = ".".join(filter(None, [r["target_table"], r["column_name"]]))
            table.add_row(str(r["reject_id"]), str(r["line_number"] or ""), where, r["check_name"],
                          " ".join(str(r["reason"]).split()), _short(r["value"]), r["replay_state"])
            if records and r.get("raw_record"):
                table.add_row("", "", "", "", f"record: {r['raw_record']}", "", "")
        out.print(table)
    if len(rows) == limit:
        out.print(f"(the first {limit}; --limit N shows more)", highlight=False)


@rejects.command("show")
@click.argument("reject_id", type=int)
@project_option
@db_option
@pipeline_option
@json_option
def rejects_show(reject_id: int, project_dir: Path, db_url: str | None, pipeline: str | None, as_json: bool) -> None:
    """Show one reject in full, with its raw record."""
    from chute.errors import ConfigError
    from chute.quality.quarantine import select_rejects

    name, conn = _open(project_dir, db_url, pipeline)
    with conn:
        rows = select_rejects(conn, name, state=None, ids=[reject_id], limit=1)
    if not rows:
        raise ConfigError(f"no reject {reject_id} in pipeline {name!r}")
    if as_json:
        emit_json(rows[0])
        return
    for key, value in rows[0].items():
        out.print(f"[bold]{key:>14}[/]  {escape('' if value is None else str(value))}", highlight=False, markup=True)


@rejects.command("export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@project_option
@db_option
@pipeline_option
@filter_options
@click.option("--state", type=click.Choice(["pending", "replayed", "discarded", "all"]), default="all",
              show_default=True)
@json_option
def rejects_export(path: Path, project_dir: Path, db_url: str | None, pipeline: str | None, file, column, reason,
                   check, state: str, as_json: bool) -> None:
    """Write the matching rejects to PATH as CSV (- for standard output)."""
    from chute.quality.quarantine import export_rejects

    name, conn = _open(project_dir, db_url, pipeline)
    filters = dict(state=state, file=file, column=column, reason=reason, check=check)
    with conn:
        if str(path) == "-":
            export_rejects(conn, name, sys.stdout.buffer, **filters)
            return
        partial = path.with_name(f".{path.name}.partial")
        with partial.open("wb") as f:
            n = export_rejects(conn, name, f, **filters)
        partial.replace(path)
    if as_json:
        emit_json({"path": str(path), "rejects": n})
    else:
        out.print(f"{n} rejects written to {path}", markup=False)


@click.command()
@project_option
@db_option
@filter_options
@click.option("--id", "ids", type=int, multiple=True, metavar="REJECT_ID", help="Replay this reject's record; repeatable.")
@click.option("--data", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A corrected copy of the file (records fixed in place) to read instead of the landing file.")
@json_option
def replay(project_dir: Path, db_url: str | None, file, column, reason, check, ids: tuple[int, ...],
           data: Path | None, as_json: bool) -> None:
    """Load quarantined records again, after fixing the contract (chute.toml, pipeline.py) or the data.

    Selects pending rejects (by --file, --id, --column, --reason, --check; all pending ones if
    none is given), reads their records again and loads those that now pass, exactly once:
    a replayed record is marked and never loads again; records that still fail stay pending.
    A file that failed as a whole (e.g. past max_rejects) is loaded again with --file NAME.
    """
    from chute.errors import ConfigError
    from chute.config.project import load_project
    from chute.run.replay import replay as run_replay
    from chute.db.resolve import resolve_database

    if data is not None and not file:
        raise ConfigError("--data needs --file NAME: the file whose records it corrects")
    project = load_project(project_dir)
    url = resolve_database(project, db_url, project_dir)
    result = run_replay(project, url, data=data, file=file, column=column, reason=reason, check=check, ids=ids)
    report_replay(result, as_json)


def _short(value: str | None, width: int = 40) -> str:
    """A value in a table cell: one line, cut with an ellipsis past `width` (chute rejects show N has it whole)."""
    text = " ".join(str(value or "").split())
    return text if len(text) <= width else text[:width - 1] + "…"

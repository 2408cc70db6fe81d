"""The gate between the nodes and the tables: drift policy, types, contract checks.

For each frame bound for a table, one vectorised pass computes a boolean per check; rows
with none set go on to the table, the others become reject records (one per failed check)
kept for quarantine. One Gate lives for one load unit, so its reject records commit or roll
back with the unit's rows.

A table whose columns chute.toml leaves out is created here, from the first rows bound for it
(the nodes' output, or the file's rows without nodes): the types as `chute load` infers them
(formats/infer.py: infer_frame), the names in snake_case, CREATE TABLE in the unit's
transaction (it exists only if those rows commit). Later runs find the table and load into its
columns, as into declared ones (db/postgres.py: ensure_table).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Protocol

import polars as pl
import pyarrow as pa

from chute.coltypes import ColumnType, from_polars, parse_type
from chute.db.postgres import adopted
from chute.formats.dates import detect_temporal
from chute.formats.infer import infer_frame
from chute.formats.names import check_names, normalize_names
from chute.db.target import Target
from chute.errors import FileError, TransformError, setting
from chute.config.project import Source
from chute.coltypes import cast_expr
from chute.quality.contracts import Check, Contract, compile_checks
from chute.formats.salvage import MASK, ROW_COLUMN, ParseReject, locate, row_json

_TEMPORAL = ("date", "timestamp", "timestamptz", "time")

# The reject records of a load unit, as staged by quarantine.COMMIT_REJECTS_SQL.
STAGE_SCHEMA = pa.schema([
    ("file_name", pa.string()), ("file_sha256", pa.string()), ("target_table", pa.string()),
    ("row_number", pa.int64()), ("line_number", pa.int64()), ("column_name", pa.string()),
    ("check_name", pa.string()), ("reason", pa.string()), ("value", pa.string()), ("raw_record", pa.string()),
])


class ColumnAdder(Protocol):
    """What the gate needs of the load unit it serves (load/unit.py: LoadUnit): under
    drift = 'evolve', a column added to the target inside the unit's transaction."""

    def add_column(self, target: Target, name: str, type_: ColumnType) -> None: ...

    def create_table(self, target: Target, comments: dict[str, str]) -> dict[str, str] | None: ...


class Gate:
    def __init__(self, contracts: dict[str, Contract], source: Source, unit: ColumnAdder):
        self.contracts = contracts
        self.source = source
        self.pii = set(source.pii_columns)
        self.unit = unit
        self.loaded: dict[str, int] = {}  # file name -> rows loaded (all tables)
        self._loaded_by_table: dict[str, dict[str, int]] = {}  # table -> file name -> rows loaded
        self._unattributed: set[str] = set()  # tables that got rows no file column names (several files)
        self.rejected: dict[str, int] = {}  # file name -> rejected rows (all tables, parse errors included)
        self._by_table: dict[tuple[str, str], int] = {}  # (file, table) -> rejected rows
        self._parse: dict[str, list[ParseReject]] = {}
        self._records: list[pl.DataFrame] = []
        self._evolved: list[tuple[Target, str]] = []
        self._inferred: list[Target] = []  # tables whose columns this unit inferred (or found created meanwhile)
        self.created: dict[str, list[dict]] = {}  # "schema.table" -> the columns inferred, for tables this unit created
        self._checks: dict[str, list[Check]] = {}

    # -- per frame ------------------------------------------------------------------------
    def check(self, frame: pl.DataFrame, target: Target, only_file: str | None) -> pl.DataFrame:
        """The frame's good rows, in the table's columns and types; the rest kept as rejects.

        `only_file` names the file the rows come from when the frame has no file column and
        the unit holds one file.
        """
        fc = self.source.file_column
        contract = self.contracts.get(target.table)
        if target.inferred:
            frame = self._infer(frame, target)
            if not target.columns:  # no rows yet to infer from: nothing to write
                return pl.DataFrame()
        frame = self._drift(frame, target, contract)
        columns = target.columns
        try:
            cast = frame.select([cast_expr(c, frame.schema[c], t.polars, self._format(frame, target, c, t)).alias(c)
                                 for c, t in columns.items()])
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise TransformError(f"table {target.schema}.{target.table}: {str(exc).splitlines()[0]}") from None
        flags: list[tuple[Check, pl.Series]] = []
        for c, t in columns.items():
            before, after = frame.get_column(c), cast.get_column(c)
            if before.dtype != after.dtype:
                wrong = before.is_not_null() & after.is_null()
                if wrong.any():
                    flags.append((Check("type", c, pl.lit(False), f"not a valid {t.name}"), wrong))
        checks = self._compiled(target, contract)
        if checks:
            try:
                evaluated = cast.select([ch.bad.alias(f"_{i}") for i, ch in enumerate(checks)])
            except Exception as exc:
                raise TransformError(f"table {target.schema}.{target.table}: a contract check failed to run: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
            for ch, series in zip(checks, evaluated.iter_columns()):
                if series.any():
                    flags.append((ch, series))
        files = frame.get_column(fc) if fc in frame.columns else None
        if not flags:
            self._count(self.loaded, files, only_file, frame.height)
            self._count_table(target.table, files, only_file, frame.height)
            return cast
        bad = pl.DataFrame([s.alias(f"_{i}") for i, (_, s) in enumerate(flags)]).select(
            pl.any_horizontal(pl.all())).to_series()
        if files is None and only_file is None:
            raise TransformError(f"table {target.schema}.{target.table}: rows were rejected but the data has no "
                                 f"{fc!r} column to tell which file they came from; keep it in your node's output")
        self._keep(frame, target, flags, only_file)
        good = cast.filter(~bad)
        self._count(self.loaded, None if files is None else files.filter(~bad), only_file, good.height)
        self._count_table(target.table, None if files is None else files.filter(~bad), only_file, good.height)
        rejected_files = None if files is None else files.filter(bad)
        per_file: dict[str, int] = {}
        self._count(per_file, rejected_files, only_file, int(bad.sum()))
        for name, n in per_file.items():
            self.rejected[name] = self.rejected.get(name, 0) + n
            key = (name, target.table)
            self._by_table[key] = self._by_table.get(key, 0) + n
            if contract and contract.max_rejects is not None and self._by_table[key] > contract.max_rejects:
                raise FileError(self._too_many(name, target, self._by_table[key]))
        return good

    def _infer(self, frame: pl.DataFrame, target: Target) -> pl.DataFrame:
        """A frame bound for a table chute.toml leaves to inference: its names in snake_case
        (unless names = "keep"), as `chute load` names them; and, at the first rows, the table
        created (in this unit's transaction) with the types inferred from them."""
        internal = {self.source.file_column, ROW_COLUMN}
        data = [c for c in frame.columns if c not in internal]
        names = normalize_names(data) if target.names == "normalize" else data
        if not target.columns and frame.height:
            self._create(frame.select(data), target, names)
        counts = Counter(names)
        rename = {c: n for c, n in zip(data, names)
                  if c != n and c not in target.columns and counts[n] == 1 and n not in data}
        return frame.rename(rename) if rename else frame

    def _create(self, rows: pl.DataFrame, target: Target, names: list[str]) -> None:
        where, section = f"table {target.schema}.{target.table}", f"[tables.{target.table}]"
        problem = check_names(names, rows.columns, keep=target.names == "keep")
        if problem:
            problem = (problem.replace("load with --names keep", f"set names = \"keep\" in {section}")
                       .replace("with --names normalize", f"with names = \"normalize\" in {section}")
                       .replace("--columns NAME,NAME,... (or, in a project, [source] select)", "[source] select")
                       .replace("with --columns", "with [source] select"))
            raise TransformError(f"{where}: its columns are inferred from the data, but {problem}")
        inferred = infer_frame(rows, {}, {}, True)
        for info, name in zip(inferred.columns, names):
            if name != info.name:
                info.original, info.name = info.name, name
        columns = {c.name: parse_type(c.type) for c in inferred.columns}
        keys = [c for c in [*target.primary_key, *target.foreign_keys] if c not in columns]
        if keys:
            raise TransformError(f"{where}: chute.toml names {', '.join(keys)} as key column(s), but the data's "
                                 f"columns, as the table would name them, are: {', '.join(columns)}")
        target.columns, target.formats = columns, {c.name: c.format for c in inferred.columns if c.format}
        self._inferred.append(target)
        existing = self.unit.create_table(target, {c.name: c.original for c in inferred.columns if c.original})
        if existing is not None:  # another worker created it meanwhile: its columns are the declaration
            target.columns, target.formats = adopted(existing, f"{target.schema}.{target.table}"), {}
            return
        self.created[f"{target.schema}.{target.table}"] = [
            {k: v for k, v in asdict(c).items() if k in ("name", "type", "format", "original", "note") and v}
            for c in inferred.columns]

    @staticmethod
    def _format(frame: pl.DataFrame, target: Target, column: str, type_: ColumnType) -> str | None:
        """The date/time format of a text column bound for a temporal column of an inferred
        table: the one found when the table was created (this run), else found in these values,
        as `chute load` finds it in each file it loads into an existing table."""
        if not target.inferred or type_.name not in _TEMPORAL or frame.schema.get(column) != pl.String:
            return None
        return target.formats.get(column) or detect_temporal(frame.get_column(column)).format

    def _drift(self, frame: pl.DataFrame, target: Target, contract: Contract | None) -> pl.DataFrame:
        policy = contract.drift if contract else "freeze"
        internal = {self.source.file_column, ROW_COLUMN}
        where = f"table {target.schema}.{target.table}"
        missing = [c for c in target.columns if c not in frame.columns]
        extra = [c for c in frame.columns if c not in target.columns and c not in internal]
        has = ", ".join(c for c in frame.columns if c not in internal)
        if frame.height and missing and len(missing) == len(target.columns):  # rows of NULLs, whatever the policy
            raise TransformError(f"{where}: none of the table's columns ({', '.join(missing)}) is in the data "
                                 f"(it has: {has}){_names_hint(extra, missing)}")
        if policy == "freeze":
            section = f"tables.{target.table}.contract"
            if missing:
                hint = _names_hint(extra, missing)
                raise TransformError(f"{where}: the data has no column(s) {', '.join(missing)} (it has: {has}){hint}; "
                                     f"{'or ' * bool(hint)}set {setting('drift', 'discard', section)} to load its "
                                     "rows with them NULL")
            if extra:
                raise TransformError(f"{where}: the data has column(s) {', '.join(extra)} that the table does not "
                                     f"have; add them to the table, or set {setting('drift', 'evolve', section)} "
                                     f"(adds them) or {setting('drift', 'discard', section)} (leaves them out)")
        if policy == "evolve":
            for name in extra:
                type_ = _evolved_type(frame.schema[name])
                self.unit.add_column(target, name, type_)
                target.columns[name] = type_
                self._evolved.append((target, name))
        if missing:  # evolve and discard: the table's other columns stay NULL for these rows
            frame = frame.with_columns([pl.lit(None).alias(c) for c in missing])
        return frame

    def _compiled(self, target: Target, contract: Contract | None) -> list[Check]:
        key = f"{target.schema}.{target.table}"
        if key not in self._checks:
            self._checks[key] = compile_checks(contract, target.columns, target.primary_key, target.mode)
        return self._checks[key]

    def _keep(self, frame: pl.DataFrame, target: Target, flags: list[tuple[Check, pl.Series]],
              only_file: str | None) -> None:
        fc = self.source.file_column
        data = [c for c in frame.columns if c not in (fc, ROW_COLUMN)]
        for ch, series in flags:
            rows = frame.filter(series)
            column = ch.column if ch.column in frame.columns else None
            if column is None:
                value = pl.lit(None, pl.String)
            elif column in self.pii:
                value = pl.lit(MASK)
            else:
                value = _as_text(rows, column)
            self._records.append(pl.DataFrame({
                "file_name": rows.get_column(fc).cast(pl.String) if fc in rows.columns
                else pl.Series([only_file] * rows.height, dtype=pl.String),
                "target_table": pl.Series([f"{target.schema}.{target.table}"] * rows.height, dtype=pl.String),
                "row_number": rows.get_column(ROW_COLUMN).cast(pl.Int64) if ROW_COLUMN in rows.columns
                else pl.Series([None] * rows.height, dtype=pl.Int64),
                "column_name": pl.Series([ch.column] * rows.height, dtype=pl.String),
                "check_name": pl.Series([ch.name] * rows.height, dtype=pl.String),
                "reason": pl.Series([ch.reason] * rows.height, dtype=pl.String),
                "value": rows.with_columns(value.alias("_chute_value")).get_column("_chute_value"),
                "raw_record": row_json(rows.select(data), self.pii),
            }))

    @staticmethod
    def _count(into: dict[str, int], files: pl.Series | None, only_file: str | None, total: int) -> None:
        if files is None:
            if only_file is not None and total:
                into[only_file] = into.get(only_file, 0) + total
            return
        # A file's rows come together: counting runs first hashes ~1,000 names, not 2 M rows.
        runs = files.rle().struct.unnest()
        for name, n in runs.group_by("value").agg(pl.col("len").sum()).iter_rows():
            if name is not None:
                into[name] = into.get(name, 0) + n

    def _count_table(self, table: str, files: pl.Series | None, only_file: str | None, total: int) -> None:
        if files is None and only_file is None and total:
            self._unattributed.add(table)
        self._count(self._loaded_by_table.setdefault(table, {}), files, only_file, total)

    # -- per file -------------------------------------------------------------------------
    def parse_rejects(self, file_name: str, rejects: list[ParseReject]) -> None:
        """Records the reader refused (lenient parse); they count against every table's thresholds."""
        if rejects:
            self._parse[file_name] = rejects
            self.rejected[file_name] = self.rejected.get(file_name, 0) + len(rejects)

    def enforce(self, file_name: str, rows_read: int) -> None:
        """Fail the file when its rejects pass a contract's max_rejects or max_reject_ratio, or
        when it brings a table fewer rows than its contract's min_rows."""
        parse = len(self._parse.get(file_name, ()))
        for table, contract in self.contracts.items():
            if contract.min_rows:
                # Rows the file brought the table (its rows read, where rows of several files went
                # in together without a file column to tell them apart).
                got = rows_read if table in self._unattributed else self._loaded_by_table.get(table, {}).get(file_name, 0)
                if got < contract.min_rows:
                    what = "no data rows" if not rows_read else f"{got} row{'s' * (got != 1)} for it"
                    raise FileError(f"{file_name}: {what}, and table {table} must get at least {contract.min_rows} "
                                    f"from each file (its contract's min_rows)")
            n = self._by_table.get((file_name, table), 0) + parse
            if not n:
                continue
            if contract.max_rejects is not None and n > contract.max_rejects:
                raise FileError(self._too_many(file_name, table, n))
            total = rows_read + parse
            if contract.max_reject_ratio is not None and total and n / total > contract.max_reject_ratio:
                raise FileError(f"{file_name}: {n} of {total} rows rejected for table {table} "
                                f"({n / total:.1%}), more than its contract's max_reject_ratio "
                                f"{contract.max_reject_ratio:.1%}; {self._first_reasons(file_name)}")

    def _too_many(self, file_name: str, target: Target | str, n: int) -> str:
        table = target if isinstance(target, str) else target.table
        limit = self.contracts[table].max_rejects
        return (f"{file_name}: {n} rows rejected for table {table}, more than its contract's max_rejects {limit}; "
                f"{self._first_reasons(file_name)}")

    def _first_reasons(self, file_name: str) -> str:
        reasons: list[str] = []
        for r in self._parse.get(file_name, ()):
            reasons.append(f"line {r.line_number}: {r.reason}")
        for frame in self._records:
            for row in frame.filter(pl.col("file_name") == file_name).head(3).iter_rows(named=True):
                reasons.append(f"row {row['row_number']}: {row['column_name'] or ''} {row['reason']}".replace("  ", " "))
        return "first: " + "; ".join(reasons[:3]) if reasons else "see chute rejects"

    def records(self, files: Iterable[tuple[str, str]], source_of: Callable[[str], str | bytes]) -> pa.Table:
        """Every reject record of the unit, ready to stage: (file name, sha256) of each file
        whose rows are in it; `source_of(name)` gives its path (or bytes) to find lines in."""
        sha = dict(files)
        parts = []
        for name, rejects in self._parse.items():
            parts.append(pl.DataFrame({
                "file_name": [name] * len(rejects), "target_table": [None] * len(rejects),
                "row_number": [r.row_number for r in rejects], "line_number": [r.line_number for r in rejects],
                "column_name": [r.column for r in rejects],
                "check_name": ["parse" if r.column is None else "type" for r in rejects],
                "reason": [r.reason for r in rejects], "value": [r.value for r in rejects],
                "raw_record": [r.raw_record for r in rejects],
            }, schema=_SCHEMA))
        if self._records:
            rows = pl.concat(self._records, how="vertical_relaxed")
            lines = []
            for name, numbers in rows.filter(pl.col("row_number").is_not_null()).group_by("file_name").agg("row_number").iter_rows():
                found = locate(source_of(name), self.source, set(numbers))
                lines.extend((name, row, line, text) for row, (line, text) in found.items())
            located = pl.DataFrame(lines, schema={"file_name": pl.String, "row_number": pl.Int64,
                                                  "line_number": pl.Int64, "source_record": pl.String}, orient="row")
            rows = rows.join(located, on=["file_name", "row_number"], how="left").select(
                "file_name", "target_table", "row_number", "line_number", "column_name", "check_name", "reason",
                "value", pl.coalesce("source_record", "raw_record").alias("raw_record"))
            parts.append(rows)
        if not parts:
            empty = pl.DataFrame(schema={**_SCHEMA, "file_sha256": pl.String})  # polars: pyarrow's imports pandas
            return empty.select(STAGE_SCHEMA.names).to_arrow().cast(STAGE_SCHEMA)
        out = pl.concat([p.cast(_SCHEMA) for p in parts], how="vertical")
        out = out.with_columns(file_sha256=pl.col("file_name").replace_strict(sha, default=None, return_dtype=pl.String))
        return out.select(STAGE_SCHEMA.names).to_arrow().cast(STAGE_SCHEMA)

    def rejected_rows(self) -> set[int]:
        """Record positions of the rows rejected so far (by the checks, not the reader)."""
        return {n for frame in self._records for n in frame.get_column("row_number").drop_nulls().to_list()}

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for frame in self._records:
            for column, reason, n in frame.group_by("column_name", "reason").len().iter_rows():
                key = f"{column}: {reason}" if column else reason
                counts[key] = counts.get(key, 0) + n
        return counts

    def undo(self) -> None:
        """The unit rolled back: forget columns added to targets in it."""
        for target, name in reversed(self._evolved):
            target.columns.pop(name, None)
        self._evolved.clear()
        for target in self._inferred:  # created in the rolled-back transaction: gone with it
            target.columns, target.formats = {}, {}
        self._inferred.clear()
        self.created.clear()


_SCHEMA = {"file_name": pl.String, "target_table": pl.String, "row_number": pl.Int64, "line_number": pl.Int64,
           "column_name": pl.String, "check_name": pl.String, "reason": pl.String, "value": pl.String,
           "raw_record": pl.String}


def _as_text(rows: pl.DataFrame, column: str) -> pl.Expr:
    dtype = rows.schema[column]
    if dtype.is_nested():
        return pl.col(column).map_batches(lambda s: pl.Series([str(v) for v in s.to_list()], dtype=pl.String))
    return pl.col(column).cast(pl.String)


def _evolved_type(dtype: pl.DataType) -> ColumnType:
    if dtype == pl.Null or dtype.is_nested():
        return parse_type("text")
    return from_polars(dtype)


def _names_hint(extra: list[str], missing: list[str]) -> str:
    """Why the data's column names may miss the table's: a header cut by another delimiter, or
    names that differ in case only (PostgreSQL's quoted names are case-sensitive)."""
    for name in extra:
        for sep in (";", "\t", "|", ","):
            if sep in name:
                return (f"; its header {name!r} looks delimited by {sep!r}: set "
                        f"{setting('delimiter', sep)}")
    lower = {m.lower(): m for m in missing}
    pairs = [f"{e!r} is {lower[e.lower()]!r}" for e in extra if e.lower() in lower]
    if pairs:
        return f"; names differ in case only ({', '.join(pairs)} in the table): rename the file's or the table's columns"
    return ""

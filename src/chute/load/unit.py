"""One load unit: the rows of some files into their target tables, with the files' ledger
rows and the run's counters, in ONE transaction on the load connection (postgres.connect_loader).

Rows reach PostgreSQL by binary COPY from Arrow (db/copy.py), one statement per table left open
while the unit's frames for it come (CopyStream). `append` and `replace` copy straight into
the target; `merge` copies into an index-free temporary table, then upserts by primary key.
A merge or append into an EMPTY table is a plain COPY: the table is locked and truncated (on a
cluster with wal_level=minimal the COPY then skips the WAL), its primary key index is dropped
and built again at commit, which costs half the server time of maintaining it row by row.
Nothing is visible to anyone until commit, so a crash at any point leaves no partial load.
"""

from __future__ import annotations

import os

import polars as pl
import psycopg
import pyarrow as pa
from psycopg import sql

from chute.ledger import files as ledger
from chute.ledger.schema import SET_FORMATS_SQL
from chute.coltypes import ColumnType
from chute.errors import DatabaseError
from chute.formats.text import row_numbers
from chute.quality import quarantine
from chute.db.copy import CopyStream, copy_arrow, create_temporary, encodable
from chute.db.postgres import create_statements, qualified, redact
from chute.db.target import Target

SEQ = "_chute_seq"  # arrival order in the merge stage: the last row of a key wins
# A merge whose stage holds at least this share of the table's rows rewrites the table
# instead of updating rows one by one (LoadUnit._rewrite); smaller merges update in place.
REWRITE_SHARE = 0.2
REWRITE_MIN = 50_000
# A table's primary key as [name, definition] (from `c`, its pg_class row): dropped for a
# bulk write and built again at commit from its own definition.
_PRIMARY_KEY = ("(SELECT array[p.conname::text, pg_get_constraintdef(p.oid)] FROM pg_constraint p"
                " WHERE p.contype = 'p' AND p.conrelid = c.oid)")
# The target's pg_class row as `c` (its schema and name as $1, $2).
_CLASS = " FROM pg_class c WHERE c.oid = format('%I.%I', $1::text, $2::text)::regclass"
TRACKED_KEYS = 20_000_000  # staged rows per merge target whose keys LoadUnit._track_keys hashes


class LoadUnit:
    def __init__(self, conn: psycopg.Connection, pipeline: str, run_id: int, allow_direct: bool = True):
        self._conn = conn  # from connect_loader: not autocommit, $n placeholders
        self._cur = conn.cursor()
        # The COPY into a target left open for its next rows (db/copy.py: CopyStream); ended
        # before any other statement: `conn` and `cur` end it before they are handed out.
        self._stream: CopyStream | None = None
        self._streaming: Target | None = None  # the target it writes to (for messages)
        self.pipeline = pipeline
        self.run_id = run_id
        self.staged: dict[str, Target] = {}
        # Per merge target, a hash of every staged key; None: too many to keep, repeats assumed.
        self.key_hashes: dict[str, list[pl.Series] | None] = {}
        self.allow_direct = allow_direct
        self.direct: dict[str, bool] = {}  # merge and append targets that were empty: COPY straight in
        self.rebuild: dict[str, tuple[Target, list[str]]] = {}  # primary keys (name, definition) to build at commit
        self.frozen: set[str] = set()  # tables this transaction truncated: their rows are COPYed FREEZE (_truncate)
        self.stages: set[str] = set()  # merge stages (temporary tables) this unit created
        self.seq = 0
        self.staged_rows: dict[str, int] = {}  # rows staged per merge target
        self.rows_written = 0
        self.written: dict[str, int] = {}  # table -> rows written in this unit (whatever the nodes did to source_file)
        self.rejects = 0  # reject records staged for chute.rejects
        self.xid = 0  # the transaction's id, once committed (export.py tells its rows by it)

    @property
    def conn(self) -> psycopg.Connection:
        self.end_copy()
        return self._conn

    @property
    def cur(self) -> psycopg.Cursor:
        self.end_copy()
        return self._cur

    def end_copy(self) -> None:
        """End the COPY left open (raising the server's error for its rows as write would)."""
        if self._stream is None:
            return
        stream, target, self._stream, self._streaming = self._stream, self._streaming, None, None
        try:
            stream.close()
        except Exception as exc:
            raise DatabaseError(f"loading into {target.schema}.{target.table} failed: {_db_message(exc)}") from exc

    def write(self, target: Target, frame: pl.DataFrame) -> None:
        """Send rows (already cast to the target's types) into the open transaction."""
        if frame.is_empty():
            return
        try:
            if target.mode == "merge" and self._direct(target, frame):
                # An empty table has nothing to merge with: COPY straight in (its primary key
                # still refuses duplicates; the runner then retries the unit through the stage).
                self._copy(target, frame)
            elif target.mode == "merge":
                self._track_keys(target, frame)
                frame = frame.with_columns(row_numbers(SEQ, self.seq, frame.height))
                self.seq += frame.height
                name, data = self._stage_name(target), frame.to_arrow()
                if name not in self.stages:  # created once: a statement per frame would end the COPY
                    create_temporary(self.cur, name, data.schema)
                    self.stages.add(name)
                self._send(sql.Identifier(name), data, False, target)
                self.staged[target.table] = target
                self.staged_rows[target.table] = self.staged_rows.get(target.table, 0) + frame.height
            else:
                if target.mode == "replace" and not target.truncated:
                    self._truncate(target)
                    target.truncated = True  # reset by the runner if this unit rolls back
                elif target.mode == "append" and target.table not in self.direct:
                    self.direct[target.table] = self.allow_direct and self._take_if_empty(target)
                self._copy(target, frame)
        except DatabaseError:  # the COPY of earlier rows, ended here (end_copy): its own message
            raise
        except Exception as exc:
            raise DatabaseError(f"loading into {target.schema}.{target.table} failed: {_db_message(exc)}") from exc
        self.rows_written += frame.height
        self.written[target.table] = self.written.get(target.table, 0) + frame.height

    def add_column(self, target: Target, name: str, type_: ColumnType) -> None:
        """Additive schema evolution inside the load transaction: a new nullable column."""
        self.end_copy()
        try:
            self._exec(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                qualified(target.schema, target.table), sql.Identifier(name), sql.SQL(type_.sql)))
        except Exception as exc:
            raise DatabaseError(f"adding column {name} to {target.schema}.{target.table} failed: {_db_message(exc)}") from exc

    def create_table(self, target: Target, comments: dict[str, str]) -> dict[str, str] | None:
        """Create a table whose columns were inferred (target.columns) inside the load
        transaction, so it exists only if its first rows commit; `comments`: column -> the
        data's name for it. Two workers creating it at once take turns (an advisory lock on its
        name): the second finds the first's table and gets its columns (name -> SQL type) back
        instead; None when this unit created it."""
        self.end_copy()
        try:
            self.cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", (f"chute.create:{target.schema}.{target.table}",))
            self.cur.execute(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (target.schema, target.table))
            existing = dict(self.cur.fetchall())
            if existing:
                return existing
            for statement in create_statements(target, comments):
                self._exec(statement)
            clear, insert = SET_FORMATS_SQL
            self.cur.execute(clear, (target.schema, target.table))
            if target.formats:
                self.cur.execute(insert, (target.schema, target.table, list(target.formats), list(target.formats.values())))
        except Exception as exc:
            raise DatabaseError(f"creating {target.schema}.{target.table} failed: {_db_message(exc)}") from exc
        return None

    def _track_keys(self, target: Target, frame: pl.DataFrame) -> None:
        """Remember a 64-bit hash of each staged key, so that _merge deduplicates the stage
        (a sort of every staged row: ~1.2-2 s for 2 M rows) only when a key really repeats.
        A hash collision costs that sort, never a wrong result. Past TRACKED_KEYS rows,
        repeats are assumed instead, to bound memory at 8 bytes a row."""
        hashes = self.key_hashes.setdefault(target.table, [])
        if hashes is None:
            return
        if sum(map(len, hashes)) + frame.height > TRACKED_KEYS:
            self.key_hashes[target.table] = None
        else:
            hashes.append(frame.select(pl.struct(target.primary_key).hash(seed=0)).to_series())

    def _repeats_a_key(self, target: Target) -> bool:
        hashes = self.key_hashes.pop(target.table, [])
        return hashes is None or (bool(hashes) and pl.concat(hashes).is_duplicated().any())

    def reject(self, records: pa.Table) -> None:
        """Stage reject records; commit() moves them into chute.rejects with the ledger rows."""
        if records.num_rows:
            self._stage(quarantine.STAGE_TABLE, records)
            self.rejects += records.num_rows

    def _direct(self, target: Target, frame: pl.DataFrame) -> bool:
        """Whether this unit may COPY merge rows straight into the target (decided at its first
        rows): the table is empty, and these rows repeat no key."""
        if target.table not in self.direct:
            self.direct[target.table] = self.allow_direct and target.table not in self.staged \
                and not frame.select(target.primary_key).is_duplicated().any() and self._take_if_empty(target)
        return self.direct[target.table]

    def _take_if_empty(self, target: Target) -> bool:
        """Whether the table is empty; if so it is truncated in this transaction, so that (with
        wal_level=minimal) the rows COPYed into it skip the WAL, and its primary key is dropped
        and built again at commit, which costs half the server time of maintaining it row by
        row. Neither when a foreign key refers to the table (TRUNCATE is refused then).

        The table is locked first, so no other writer can add rows between the check that it
        is empty and the commit.
        """
        table = qualified(target.schema, target.table)
        self._exec(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        self._exec(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(table))
        if not self.cur.fetchone()[0]:
            return False
        self.cur.execute(
            f"SELECT {_PRIMARY_KEY},"
            " NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid)" + _CLASS,
            (target.schema, target.table))
        primary_key, free = self.cur.fetchone()
        if free:
            self._truncate(target)
            if primary_key:
                self._drop_primary_key(target, primary_key)
        return True

    def _truncate(self, target: Target) -> None:
        """Empty the table in this transaction. Rows COPYed into it afterwards are written
        frozen: nobody can see the table until commit, and this way the first reader does not
        set a hint bit on every row (rewriting all of its pages) and VACUUM need not freeze
        them later. Not under repeatable read (PostgreSQL refuses FREEZE there), nor for a
        partitioned table."""
        table = qualified(target.schema, target.table)
        self._exec(sql.SQL("TRUNCATE {}").format(table))
        self.cur.execute("SELECT c.relkind = 'r' AND current_setting('transaction_isolation') = 'read committed'"
                         + _CLASS, (target.schema, target.table))
        if self.cur.fetchone()[0]:
            self.frozen.add(target.table)

    def _copy(self, target: Target, frame: pl.DataFrame) -> None:
        self._send(qualified(target.schema, target.table), frame.to_arrow(), target.table in self.frozen, target)

    def _send(self, into: sql.Composable, data: pa.Table, freeze: bool, target: Target) -> None:
        """Rows into table `into` (the target, or its merge stage) by the COPY left open for the
        next frame of the same table and types."""
        data = encodable(data)
        if self._stream is not None and not self._stream.takes(into, data.schema, freeze):
            self.end_copy()
        if self._stream is None:
            self._stream, self._streaming = CopyStream(self._cur, into, data.schema, freeze), target
        self._stream.write(data)

    def _drop_primary_key(self, target: Target, primary_key: list[str]) -> None:
        """Drop the key ([name, definition]) until commit, where _build_primary_keys builds it
        again from its own definition (`chute load` into a keyed table declares no key)."""
        self._exec(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            qualified(target.schema, target.table), sql.Identifier(primary_key[0])))
        self.rebuild[target.table] = (target, primary_key)

    def _build_primary_keys(self) -> None:
        """A repeated key fails here like a COPY into the indexed table would (23505)."""
        if self.rebuild:
            # Deferred foreign-key checks of the rows written so far must run before an ALTER.
            self._exec(sql.SQL("SET CONSTRAINTS ALL IMMEDIATE"))
            self._exec(sql.SQL("SET LOCAL maintenance_work_mem = '256MB'"))
        for target, (name, definition) in self.rebuild.values():
            self._exec(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                qualified(target.schema, target.table), sql.Identifier(name), sql.SQL(definition)))

    def commit(self, files: list[ledger.LedgerRow], extra: list[tuple[str, tuple]] = ()) -> None:
        """Merge staged rows, write the files' ledger rows, rejects, the run counters and any
        `extra` statements ($n parameters), commit."""
        self.end_copy()
        try:
            for target in self.staged.values():
                self._merge(target)
            self._build_primary_keys()
            self._exec(sql.SQL("DROP TABLE IF EXISTS chute_stage_files"))
            self._stage("chute_stage_files", _ledger_rows(files))
            self.cur.execute(ledger.COMMIT_FILES_SQL)
            if self.rejects:
                self.cur.execute(quarantine.COMMIT_REJECTS_SQL, (self.pipeline,))
            self.cur.execute(ledger.COMMIT_RUN_SQL, (
                sum(f.loaded for f in files),
                sum(f.rows_read or 0 for f in files),
                self.rows_written,  # what was written, in every table: right even when no row names its file
                sum(f.rows_rejected for f in files),
                self.run_id,
            ))
            self.xid = self.cur.fetchone()[0]  # the run's counters return the transaction's id
            for statement, params in extra:
                self.cur.execute(statement, params)
        except Exception as exc:
            raise DatabaseError(f"committing the load failed: {_db_message(exc)}") from exc
        _crash_point("before_commit")
        self.conn.commit()
        self._drop_stages()

    def rollback(self) -> None:
        stream, self._stream, self._streaming = self._stream, None, None
        if stream is not None:  # CopyFail first: the connection takes no ROLLBACK during a COPY
            stream.abort(RuntimeError("the load unit rolled back"))
        self.stages.clear()  # temporary tables created in the transaction are gone with it
        try:
            self._conn.rollback()
        except Exception:  # the connection may be gone; the server rolls back on its own
            pass

    def _merge(self, target: Target) -> None:
        """Upsert the staged rows: new keys inserted, rows of existing keys updated only when a
        value changed (unchanged rows are not rewritten at all).

        Measured on 2 M rows: INSERT ... ON CONFLICT DO UPDATE took 8.5-11 s into an empty
        table where a plain INSERT ... SELECT took 3.2 s, so conflicts are handled apart.
        benchmarks/bench_merge.py times this against MERGE and DELETE USING + INSERT when every
        row conflicts; at 200 k rows none of them was faster (docs/benchmarks.md).
        """
        stage = sql.Identifier(self._stage_name(target))
        if self._repeats_a_key(target):  # the unit holds a key more than once: the last row wins
            deduped = sql.Identifier(self._stage_name(target) + "_d")
            self._exec(sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT DISTINCT ON ({}) * FROM {} ORDER BY {}, {} DESC")
                       .format(deduped, _list(target.primary_key), stage, _list(target.primary_key),
                               sql.Identifier(SEQ)))
            self._exec(sql.SQL("DROP TABLE {}").format(stage))
            self._exec(sql.SQL("ALTER TABLE {} RENAME TO {}").format(deduped, stage))
        into = qualified(target.schema, target.table)
        cols = _list(target.columns)
        self._exec(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(into))
        if not self.cur.fetchone()[0]:
            self._exec(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(into, cols, cols, stage))
            return
        # A temporary table has no statistics: without them the planner joins a small stage to a
        # big table by scanning the whole table (measured: 0.8 s per 60k-row unit on 2 M rows).
        self._exec(sql.SQL("ANALYZE {}").format(stage))
        primary_key = self._rewrite_instead(target)
        if primary_key:
            self._rewrite(target, into, stage, primary_key)
            return
        for statement in merge_statements(into, stage, list(target.columns), target.primary_key):
            self._exec(statement)

    def _rewrite_instead(self, target: Target) -> list[str] | None:
        """The primary key ([name, definition]) when rewriting the table beats updating it row by row: the
        stage holds at least REWRITE_SHARE of the table's rows (and REWRITE_MIN rows), the
        table has exactly the declared columns, no trigger, and no foreign key refers to it."""
        staged = self.staged_rows.get(target.table, 0)
        if staged < REWRITE_MIN:
            return None
        self.cur.execute(
            "SELECT c.reltuples,"
            " (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
            " EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid)"
            " OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),"
            f" {_PRIMARY_KEY}" + _CLASS,
            (target.schema, target.table))
        rows, columns, tied, primary_key = self.cur.fetchone()
        if tied or not primary_key or columns != len(target.columns) or not 0 < rows <= staged / REWRITE_SHARE:
            return None
        return primary_key

    def _rewrite(self, target: Target, into: sql.Composable, stage: sql.Identifier, primary_key: list[str]) -> None:
        """Upsert by rewriting: the table's rows whose key is not staged join the staged rows
        in the stage, and they all go back into the emptied table, whose primary key is built
        again. The truncated table is new to this transaction, so (with wal_level=minimal) the
        rows skip the WAL. Measured on 2 M rows that all conflict: ~6.6 s of SQL against ~30 s
        for UPDATE + INSERT, when the kept rows still went through a table of their own.
        The table is locked for writes and reads until commit, as a TRUNCATE requires."""
        cols = _list(target.columns)
        match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(c)) for c in target.primary_key)
        self._exec(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(into))
        # The subquery reads the stage as it was before this statement: only staged keys count.
        # A hash anti-join: the planner's merge join sorts the stage and reads the table by its
        # key index, fetching every row from the heap (2 M rows: 3.1-3.4 s against 1.4-1.7 s).
        self._exec(sql.SQL("SET LOCAL enable_mergejoin = off"))
        self._exec(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})")
                   .format(stage, cols, cols, into, stage, match))
        self._exec(sql.SQL("RESET enable_mergejoin"))
        self._exec(sql.SQL("TRUNCATE {}").format(into))
        self._drop_primary_key(target, primary_key)
        self._exec(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(into, cols, cols, stage))

    def _drop_stages(self) -> None:
        for target in self.staged.values():
            self._exec(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self._stage_name(target))))
        if self.rejects:
            self._exec(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(quarantine.STAGE_TABLE)))
            self.rejects = 0
        self.conn.commit()
        self.staged.clear()
        self.stages.clear()

    @staticmethod
    def _stage_name(target: Target) -> str:
        return f"chute_stage_{target.schema}_{target.table}"[:60]

    def _stage(self, name: str, rows: pa.Table) -> None:
        """Rows into a temporary table of this session, created at its first rows."""
        create_temporary(self.cur, name, rows.schema)
        copy_arrow(self.cur, sql.Identifier(name), rows)

    def _exec(self, statement: sql.Composable) -> None:
        self.cur.execute(statement)


def merge_statements(into: sql.Composable, stage: sql.Composable, columns: list[str], key: list[str],
                     strategy: str = "insert_update") -> list[sql.Composed]:
    """The statements that upsert `stage` into `into` by `key`, rows that did not change left
    alone: `insert_update` (new keys, then changed rows), `merge` (one MERGE, PostgreSQL 15+)
    or `delete_insert` (changed rows deleted, then every key not in the table inserted);
    `insert_update` runs its UPDATE of changed rows first, then INSERTs the new keys.
    bench_merge.py times all three."""
    cols = _list(columns)
    match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(c)) for c in key)
    others = [c for c in columns if c not in key]
    changed = sql.SQL("({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in others),
        sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in others))
    assignments = sql.SQL(", ").join(sql.SQL("{0} = s.{0}").format(sql.Identifier(c)) for c in others)
    values = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns)
    insert_new = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} s WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})")\
        .format(into, cols, cols, stage, into, match)
    if strategy == "merge":
        matched = (sql.SQL(" WHEN MATCHED AND {} THEN UPDATE SET {}").format(changed, assignments) if others
                   else sql.SQL(""))
        return [sql.SQL("MERGE INTO {} t USING {} s ON {}{} WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})").format(
            into, stage, match, matched, cols, values)]
    if strategy == "delete_insert":
        deleted = [sql.SQL("DELETE FROM {} t USING {} s WHERE {} AND {}").format(into, stage, match, changed)] \
            if others else []
        return [*deleted, insert_new]
    # UPDATE before INSERT: afterwards every staged key would match, and the UPDATE would
    # compare all of them (measured: 14+ s for 2 M new rows into a 2 M-row table).
    statements = []
    if others:
        statements.append(sql.SQL("UPDATE {} t SET {} FROM {} s WHERE {} AND {}").format(
            into, assignments, stage, match, changed))
    return [*statements, insert_new]


_FILES_COLUMNS = {  # a LedgerRow (ledger/files.py), as a frame
    "pipeline": pl.String, "name": pl.String, "uri": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64,
    "sha256": pl.String, "status": pl.String, "run_id": pl.Int64, "rows_read": pl.Int64, "rows_loaded": pl.Int64,
    "rows_rejected": pl.Int64, "by_name": pl.Boolean,
}


def _ledger_rows(files: list[ledger.LedgerRow]) -> pa.Table:
    """The files' ledger rows as Arrow, built by polars: pyarrow's own conversion of Python
    values imports pandas when it is installed, ~0.5 s on every load."""
    return pl.DataFrame([vars(f) for f in files], schema=_FILES_COLUMNS, orient="row").to_arrow()


def _list(names) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _db_message(exc: Exception) -> str:
    text = str(exc)
    for marker in ("ERROR:  ", "ERROR: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return redact(" ".join(text.split()))[:500]


def is_duplicate_key(exc: Exception) -> bool:
    """A unique violation, from a COPY into an indexed table or from building the index after."""
    text = str(exc)
    if ledger.CONTENT_INDEX in text:  # the ledger's guard: the content is loaded, not a table key
        return False
    return "duplicate key value violates unique constraint" in text or "could not create unique index" in text


def _crash_point(name: str) -> None:
    """Fault injection for the crash tests: CHUTE_CRASH_AT=before_commit kills the process here."""
    if os.environ.get("CHUTE_CRASH_AT") == name:
        os._exit(86)

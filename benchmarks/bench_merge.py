"""bench_merge: `merge` when every row conflicts, against a plain append and psql \\copy.

In one run, on the same server and file:

* baseline: psql \\copy of the N-row file into an empty table (no index);
* chute load --mode append of the same file into an empty table;
* chute load --mode merge of a changed copy of the file (every row's key exists, every
  row's values changed) into a table holding the N original rows: the figure the issue
  asks for (merge under 3x a plain append);
* the upsert SQL variants alone, each on a fresh copy of the full target, from the same
  temporary stage table, timed inside one psycopg connection:
  ON CONFLICT DO UPDATE, INSERT new + UPDATE changed (with and without ANALYZE of the stage),
  MERGE (PostgreSQL 15+, what chute uses), DELETE USING + INSERT.

    .venv/bin/python benchmarks/bench_merge.py [--rows 200000] [--no-statements]
"""

from __future__ import annotations

import argparse
import time

import polars as pl
import psycopg
from psycopg import sql

from _common import (CHUTE, COLUMNS_SQL, DATA, chute_json, cluster, count, fresh_database, print_machine, psql,
                     psql_cmd, show, table, timed, prices_csv)

KEY = ["day", "symbol"]
COLUMNS = ["day", "open", "high", "low", "close", "adj_close", "vwap", "volume", "symbol"]


def changed_csv(csv, rows: int):
    """The same keys with every other value changed."""
    path = DATA / f"prices_{rows}_changed.csv"
    if not path.exists():
        values = [c for c in COLUMNS if c not in KEY]
        pl.read_csv(csv).with_columns([(pl.col(c) + 1) for c in values]).write_csv(path)
    return path


def sql_variants(url: str, csv_changed) -> list[list]:
    """Time each upsert statement set from a temporary stage into a fresh copy of `base`."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from chute.load.unit import merge_statements

    into, stage = sql.Identifier("tgt"), sql.Identifier("s")
    key = sql.SQL(", ").join(map(sql.Identifier, KEY))
    others = [c for c in COLUMNS if c not in KEY]
    def chute(strategy: str):
        return merge_statements(into, stage, COLUMNS, KEY, strategy)

    on_conflict = [sql.SQL("INSERT INTO tgt SELECT * FROM s ON CONFLICT ({}) DO UPDATE SET {}").format(
        key, sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others))]
    variants = {
        "INSERT ... ON CONFLICT DO UPDATE (naive)": (False, on_conflict),
        "INSERT new + UPDATE changed (chute)": (False, chute("insert_update")),
        "ANALYZE stage + INSERT new + UPDATE changed": (True, chute("insert_update")),
        "MERGE (PostgreSQL 15+)": (False, chute("merge")),
        "ANALYZE stage + MERGE": (True, chute("merge")),
        "DELETE changed USING stage + INSERT new": (False, chute("delete_insert")),
    }
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for label, (analyze, statements) in variants.items():
            conn.execute("DROP TABLE IF EXISTS tgt")
            conn.execute("CREATE TABLE tgt (LIKE base INCLUDING ALL)")
            conn.execute("INSERT INTO tgt SELECT * FROM base")
            conn.execute("VACUUM ANALYZE tgt")
            conn.execute("DROP TABLE IF EXISTS s")
            conn.execute("CREATE TEMPORARY TABLE s AS SELECT * FROM stage_src")  # no statistics, like chute's stage
            conn.execute("CHECKPOINT")
            t0 = time.perf_counter()
            with conn.transaction():
                if analyze:
                    conn.execute("ANALYZE s")
                for statement in statements:
                    conn.execute(statement)
            seconds = time.perf_counter() - t0
            wrong = conn.execute("SELECT count(*) FROM tgt t JOIN stage_src s USING (day, symbol) "
                                 "WHERE t.close <> s.close").fetchone()[0]
            out.append([label, seconds, wrong])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--no-statements", action="store_true", help="skip timing the upsert statements alone")
    args = ap.parse_args()

    url = fresh_database(cluster(), "bench_merge")
    print_machine(url)
    csv = prices_csv(args.rows)
    changed = changed_csv(csv, args.rows)
    open(csv, "rb").read(), open(changed, "rb").read()  # warm the page cache

    psql(url, f"CREATE TABLE t ({COLUMNS_SQL})")
    psql(url, "CHECKPOINT")
    copy_cmd = psql_cmd(url, f"\\copy t FROM '{csv}' CSV HEADER")
    copy_s, _ = timed(copy_cmd)

    psql(url, "CHECKPOINT")
    append_cmd = [CHUTE, "load", str(csv), "--into", "a", "--db", url, "--json"]
    append_s, done = timed(append_cmd)
    assert chute_json(done)["rows_loaded"] == args.rows

    first = [CHUTE, "load", str(csv), "--into", "m", "--mode", "merge", "--primary-key", ",".join(KEY), "--db", url]
    timed(first)  # fills the table (untimed)
    psql(url, "VACUUM ANALYZE m")
    psql(url, "CHECKPOINT")
    merge_cmd = [CHUTE, "load", str(changed), "--into", "m", "--mode", "merge", "--primary-key", ",".join(KEY),
                 "--db", url, "--json"]
    merge_s, done = timed(merge_cmd)
    assert chute_json(done)["rows_loaded"] == args.rows and count(url, "m") == args.rows
    stale = psql(url, "SELECT count(*) FROM m JOIN t USING (day, symbol) WHERE m.close <> t.close + 1")
    assert stale == "0", f"{stale} rows were not updated"

    print(f"\n{args.rows:,} rows, 9 columns; merge: every key exists, every row changed\n")
    for cmd in (copy_cmd, append_cmd, merge_cmd):
        print("   ", show(cmd))
    print()
    table(["variant (whole command, wall)", "seconds", "rows/s", "vs psql \\copy", "vs chute append"], [
        ["psql \\copy into an empty table (baseline)", copy_s, args.rows / copy_s, "1.00x", ""],
        ["chute load --mode append (empty table)", append_s, args.rows / append_s, f"{copy_s / append_s:.2f}x",
         "1.00x"],
        ["chute load --mode merge (all rows conflict)", merge_s, args.rows / merge_s, f"{copy_s / merge_s:.2f}x",
         f"{merge_s / append_s:.2f}x the time"],
    ])

    print(f"\ntarget (issue 3): merge under 3x a plain append: {'met' if merge_s < 3 * append_s else 'NOT met'} "
          f"({merge_s / append_s:.2f}x)")
    if args.no_statements:
        return
    psql(url, f"CREATE TABLE base ({COLUMNS_SQL}, PRIMARY KEY (day, symbol))")
    psql(url, f"\\copy base FROM '{csv}' CSV HEADER")
    psql(url, f"CREATE UNLOGGED TABLE stage_src ({COLUMNS_SQL})")
    psql(url, f"\\copy stage_src FROM '{changed}' CSV HEADER")
    print("\nupsert statements alone (stage -> full target, one transaction):\n")
    table(["statements", "seconds", "rows not updated"], sql_variants(url, changed))


if __name__ == "__main__":
    main()

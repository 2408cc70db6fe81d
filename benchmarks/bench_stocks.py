"""bench_stocks: the stocks example at full size, a first `chute run` against one `psql \\copy`.

    chute init DIR --example stocks --files 7192 --seed 1   (~15 M rows in 7,192 files; the
                                                             1,000 "top companies" hold ~2.1 M)
    chute run -p DIR --db URL --json                         (first load, into a fresh database)

Baselines, same run, same server: psql \\copy of the run's own output file
DIR/processed/historical_stock_data.csv into an empty table
- like the run's target (`LIKE historical_stocks_data INCLUDING ALL`: the same columns and
  primary key). This is the \\copy the issue timed at ~7 s on these machines;
- with the same columns and no index: stricter, as the run builds the key and this does not.
Target (from the issue): the whole chute run (list, filter, read, transform, merge-load,
ledger, export) takes less time than that one \\copy; both verdicts are printed. Also
reported: the run without its export stage, a second run with nothing new (0 files loaded),
and the ledger commit per file.

    .venv/bin/python benchmarks/bench_stocks.py [--files 7192] [--seed 1] [--repeat 2] [--keep-data]
"""

from __future__ import annotations

import argparse
import shutil

from _common import (CHUTE, chute_json, cluster, count, fresh_database, hide, median, print_machine, psql,
                     psql_cmd, show, stocks_project, table, timed)

COLUMNS = ("stock_date date, open_value double precision, high_value double precision, low_value double precision, "
           "close_value double precision, volume_traded bigint, daily_percent_change double precision, "
           "value_change double precision, company_name varchar(56)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=7192)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="first loads, each into a fresh database")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated project in bench-data/")
    args = ap.parse_args()

    base = cluster()
    print_machine(base)
    project = stocks_project(f"stocks-{args.files}-s{args.seed}", args.files, args.seed)
    output = project / "processed" / "historical_stock_data.csv"
    run = [CHUTE, "run", "-p", str(project), "--db", "URL", "--json"]
    copy_sql = f"\\copy t FROM '{output}' CSV HEADER"
    keyed_sql = f"\\copy t_keyed FROM '{output}' CSV HEADER"

    rec: dict[str, list[float]] = {k: [] for k in ("wall", "seconds", "no_export", "copy", "keyed", "noop_wall",
                                                   "noop_seconds", "commit_per_file_ms")}
    for r in range(args.repeat):
        url = fresh_database(base, "bench_stocks")  # empty ledger, no table: a first load
        psql(url, "CHECKPOINT")
        run[run.index("--db") + 1] = url
        wall, done = timed(run)
        first = chute_json(done)
        rows = count(url, "historical_stocks_data")
        if first["status"] != "succeeded" or rows != first["rows_loaded"]:
            raise SystemExit(f"first run: status {first['status']}, {rows:,} rows in the table, "
                             f"{first['rows_loaded']:,} reported: {first.get('error')}")
        timings = first["timings"]
        noop_wall, done = timed(run)
        noop = chute_json(done)
        if noop["files_loaded"] != 0:
            raise SystemExit(f"second run loaded {noop['files_loaded']} files, expected 0")

        psql(url, f"CREATE TABLE t ({COLUMNS})")
        psql(url, "CREATE TABLE t_keyed (LIKE historical_stocks_data INCLUDING ALL)")
        psql(url, "CHECKPOINT")
        copy, _ = timed(psql_cmd(url, copy_sql))
        psql(url, "CHECKPOINT")
        keyed, _ = timed(psql_cmd(url, keyed_sql))
        for name in ("t", "t_keyed"):
            if count(url, name) != rows:
                raise SystemExit(f"\\copy loaded {count(url, name):,} rows into {name}, the chute run {rows:,}")

        rec["wall"].append(wall)
        rec["seconds"].append(first["seconds"])
        # A first load writes the export from the rows in memory ("export from memory").
        rec["no_export"].append(first["seconds"] - timings.get("export", 0.0) - timings.get("export from memory", 0.0))
        rec["copy"].append(copy)
        rec["keyed"].append(keyed)
        rec["noop_wall"].append(noop_wall)
        rec["noop_seconds"].append(noop["seconds"])
        rec["commit_per_file_ms"].append(1000 * timings.get("commit", 0.0) / first["files_loaded"])
        print(f"run {r + 1}: chute run {wall:.2f} s wall ({first['seconds']:.2f} s reported; "
              f"{first['files_loaded']:,} files loaded, {first['excluded']:,} filtered out, {rows:,} rows), "
              f"timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        print(f"       second run {noop_wall:.2f} s wall ({noop['seconds']:.3f} s reported, "
              f"{noop['unchanged']:,} unchanged); psql \\copy {copy:.2f} s, "
              f"into a table like the target {keyed:.2f} s")

    print(f"\ncommands (URL={hide(url)}):")
    print(f"  chute: {show(run)}   (twice: first load, then nothing new)")
    print(f"  baseline: {show(psql_cmd(url, keyed_sql))}   into CREATE TABLE t_keyed "
          "(LIKE historical_stocks_data INCLUDING ALL)")
    print(f"  stricter baseline: {show(psql_cmd(url, copy_sql))}   into CREATE TABLE t ({COLUMNS})")
    print(f"  output file: {output.stat().st_size / 1e6:.0f} MB, {rows:,} rows\n")

    lines = []
    for key, label in [("keyed", "psql \\copy into a table like the target (baseline)"),
                       ("copy", "psql \\copy into a table with no key (stricter)"), ("wall", "chute run, wall"),
                       ("seconds", "chute run, reported seconds"), ("no_export", "chute run without export"),
                       ("noop_wall", "second run (nothing new), wall"),
                       ("noop_seconds", "second run, reported seconds")]:
        xs = rec[key]
        ratios = [f"{median(rec[b]) / median(xs):.2f}x" for b in ("keyed", "copy")] if "noop" not in key else ["", ""]
        lines.append([label, min(xs), median(xs), *ratios])
    table(["", "best s", "median s", "speed vs keyed copy (median)", "vs no-key copy (median)"], lines)
    print(f"ledger commit per loaded file: {median(rec['commit_per_file_ms']):.3f} ms (median of {args.repeat})")
    print()
    for key, label in (("keyed", "into a table like the target"), ("copy", "into a table with no key")):
        met = median(rec["wall"]) < median(rec[key])
        print(f"target whole chute run < one psql \\copy {label}: {'met' if met else 'NOT met'} "
              f"(median {median(rec['wall']):.2f} s vs {median(rec[key]):.2f} s; without export "
              f"{median(rec['no_export']):.2f} s)")
    psql(base, 'DROP DATABASE IF EXISTS "bench_stocks" WITH (FORCE)')
    if not args.keep_data:
        shutil.rmtree(project)


if __name__ == "__main__":
    main()

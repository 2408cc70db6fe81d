"""bench_load: `chute load` of one big CSV against `psql \\copy` of the same file.

Measures the throughput (rows/s, wall time of the whole command) of

* baseline: psql "$URL" -c "\\copy t FROM 'FILE' CSV HEADER" into a table created first
  with the same column types, no index;
* chute:    chute load FILE --into t2 --db URL (chute creates the table, no primary key);
* extra:    chute load FILE --into t3 --mode merge --primary-key day,symbol (empty table).

The file has 2,000,000 rows of 9 columns (a date, 6 floats, a bigint, a short text; ~140 MB).
Target (from the issue): chute >= 1.5x the rows/s of psql \\copy. Each variant runs --repeat
times, interleaved, tables dropped (and chute's ledger rows for them deleted) between runs.

    .venv/bin/python benchmarks/bench_load.py [--rows 2000000] [--repeat 3] [--no-merge] [--keep-data]
"""

from __future__ import annotations

import argparse

from _common import (CHUTE, COLUMNS_SQL, chute_json, cluster, count, fresh_database, hide, median, reset,
                     print_machine, psql, psql_cmd, show, table, timed, prices_csv)

TARGET = 1.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-merge", action="store_true", help="skip the --mode merge variant")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated CSV in bench-data/")
    args = ap.parse_args()

    url = fresh_database(cluster(), "bench_load")
    print_machine(url)
    csv = prices_csv(args.rows)
    open(csv, "rb").read()  # warm the page cache so no variant pays for the first disk read

    variants = {
        "psql \\copy (baseline)": ("t", psql_cmd(url, f"\\copy t FROM '{csv}' CSV HEADER")),
        "chute load": ("t2", [CHUTE, "load", str(csv), "--into", "t2", "--db", url, "--json"]),
    }
    if not args.no_merge:
        variants["chute load --mode merge"] = ("t3", [CHUTE, "load", str(csv), "--into", "t3", "--mode", "merge",
                                                     "--primary-key", "day,symbol", "--db", url, "--json"])
    times: dict[str, list[float]] = {v: [] for v in variants}
    inner: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.repeat):
        for label, (name, cmd) in variants.items():
            reset(url, name)
            if name == "t":
                psql(url, f"CREATE TABLE t ({COLUMNS_SQL})")
            seconds, done = timed(cmd)
            rows = count(url, name)
            if rows != args.rows:
                raise SystemExit(f"{label}: {rows:,} rows in {name}, expected {args.rows:,}")
            if name != "t":
                info = chute_json(done)
                inner[label].append({"seconds": info["seconds"], **info["timings"]})
            times[label].append(seconds)
            print(f"run {r + 1}: {label:28} {seconds:7.2f} s  {args.rows / seconds:>12,.0f} rows/s")

    print(f"\ncommands (URL={hide(url)}):")
    for label, (_, cmd) in variants.items():
        print(f"  {label}: {show(cmd)}")
    print("column types chute created:", psql(url, "SELECT string_agg(format_type(atttypid, atttypmod), ', ' "
                                                   "ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't2'::regclass "
                                                   "AND attnum > 0"))
    for label, runs in inner.items():
        if runs:
            best = min(runs, key=lambda x: x["seconds"])
            print(f"chute timings, best run of {label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in best.items()))

    for label, (name, _) in variants.items():  # same rows as the baseline, value for value?
        if name != "t":
            diff = psql(url, f"SELECT (SELECT count(*) FROM (TABLE t EXCEPT ALL TABLE {name}) a) + "
                             f"(SELECT count(*) FROM (TABLE {name} EXCEPT ALL TABLE t) b)")
            print(f"rows of {label} that differ from the baseline's: {diff}")

    base = times["psql \\copy (baseline)"]
    print(f"\n{args.rows:,} rows, {csv.stat().st_size / 1e6:.0f} MB, {args.repeat} runs each")
    rows_out = []
    for label, ts in times.items():
        rows_out.append([label, min(ts), median(ts), args.rows / min(ts), args.rows / median(ts),
                         f"{min(base) / min(ts):.2f}x", f"{median(base) / median(ts):.2f}x"])
    table(["variant", "best s", "median s", "best rows/s", "median rows/s", "vs psql best", "vs psql median"],
          rows_out)
    ratio = median(base) / median(times["chute load"])
    print(f"\ntarget chute load >= {TARGET}x psql \\copy: {'met' if ratio >= TARGET else 'NOT met'} "
          f"(median ratio {ratio:.2f}x)")

    for name in ("t", "t2", "t3"):
        psql(url, f"DROP TABLE IF EXISTS {name}")
    if not args.keep_data:
        csv.unlink()


if __name__ == "__main__":
    main()

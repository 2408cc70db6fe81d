"""bench_contracts: what contract checks add to the load of the 2 M-row file.

Two projects over the same landing file (a hard link to bench-data/prices_<rows>.csv), run
interleaved with `chute run --json`, each into a fresh database:

* plain:    the table's columns and types only (every table still rejects values that do
            not convert, and missing primary-key values);
* contract: the same table with a contract on every column kind: not_null on all nine
            columns, min/max on the prices and the volume, a date range, a regex on the
            symbol, and two cross-column rules (high >= low, low <= close <= high) written
            as SQL.

All rows pass both, so both load the same 2 M rows: the difference is the cost of the checks.
Target (issue 3): contract checks add under 30% to the load time.

    .venv/bin/python benchmarks/bench_contracts.py [--rows 2000000] [--repeat 3] [--keep-data]
"""

from __future__ import annotations

import argparse
import os
import shutil

from _common import (CHUTE, DATA, chute_json, cluster, count, fresh_database, hide, median, print_machine, psql,
                     show, table, timed, prices_csv)

TARGET = 0.30

TABLE = """
[project]
name = "contracts"

[landing]
patterns = ["*.csv"]

[source.columns]
day = "date"
volume = "bigint"

[tables.rows]
mode = "append"
columns = {{ day = "date", open = "double", high = "double", low = "double", close = "double", adj_close = "double", vwap = "double", volume = "bigint", symbol = "text" }}
{contract}
"""

CONTRACT = """
[tables.rows.contract.columns]
day = { not_null = true, min = "1950-01-01", max = "2100-12-31" }
open = { not_null = true, min = 0, max = 100000 }
high = { not_null = true, min = 0, max = 100000 }
low = { not_null = true, min = 0, max = 100000 }
close = { not_null = true, min = 0, max = 100000 }
adj_close = { not_null = true, min = 0 }
vwap = { not_null = true, min = 0 }
volume = { not_null = true, min = 0, max = 10000000000 }
symbol = { not_null = true, regex = "^[a-z]{3,5}$" }

[[tables.rows.contract.rules]]
name = "high_over_low"
sql = "high >= low"
message = "the day's high is under its low"

[[tables.rows.contract.rules]]
name = "close_in_range"
sql = "close BETWEEN low AND high"
message = "the close is outside the day's range"
"""


def project(name: str, csv, contract: str):
    folder = DATA / "contracts" / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "landing").mkdir(parents=True)
    os.link(csv, folder / "landing" / csv.name)
    (folder / "chute.toml").write_text(TABLE.format(contract=contract))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep-data", action="store_true", help="keep the generated CSV in bench-data/")
    args = ap.parse_args()

    base = cluster()
    print_machine(base)
    csv = prices_csv(args.rows)
    open(csv, "rb").read()  # warm the page cache
    variants = {"plain": project("plain", csv, ""), "contract": project("contract", csv, CONTRACT)}
    times: dict[str, list[float]] = {v: [] for v in variants}
    inner: dict[str, list[dict]] = {v: [] for v in variants}
    commands = {}
    for r in range(args.repeat):
        for label, folder in variants.items():
            url = fresh_database(base, f"bench_contracts_{label}")
            psql(url, "CHECKPOINT")
            cmd = [CHUTE, "run", "-p", str(folder), "--db", url, "--json"]
            commands[label] = (cmd, url)
            seconds, done = timed(cmd)
            info = chute_json(done)
            loaded = count(url, "rows")
            if loaded != args.rows or info["rows_rejected"]:
                raise SystemExit(f"{label}: {loaded:,} rows loaded, {info['rows_rejected']} rejected; "
                                 f"expected {args.rows:,} and 0")
            times[label].append(seconds)
            inner[label].append({"seconds": info["seconds"], **info["timings"]})
            print(f"run {r + 1}: {label:9} {seconds:6.2f} s wall, {info['seconds']:6.2f} s reported")

    print("\ncommands:")
    for label, (cmd, url) in commands.items():
        print(f"  {label}: {show(cmd).replace(url, hide(url))}")
    for label, runs in inner.items():
        best = min(runs, key=lambda x: x["seconds"])
        print(f"timings, best run of {label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in best.items()))
    rows_out = [[label, min(ts), median(ts), args.rows / median(ts)] for label, ts in times.items()]
    table(["variant", "best s (wall)", "median s (wall)", "median rows/s"], rows_out)
    extra = median(times["contract"]) / median(times["plain"]) - 1
    print(f"\ncontract checks add {extra:+.1%} to the load (median wall); target < {TARGET:.0%}: "
          f"{'met' if extra < TARGET else 'NOT met'}")
    shutil.rmtree(DATA / "contracts", ignore_errors=True)
    if not args.keep_data:
        csv.unlink()


if __name__ == "__main__":
    main()

"""bench_memory: peak memory (max RSS) of `chute load` of a ~2 GB CSV, and its throughput.

    /usr/bin/time -v chute load FILE --into big --db URL --json

The file (30,000,000 rows of 9 columns, ~2.1 GB) is streamed to disk in 1 M-row chunks.
Target (from the issue): peak resident memory of the chute process stays under 600 MB.
Baseline in the same run: /usr/bin/time -v psql \\copy of the same file into a table of the
same types (throughput reference; psql's own RSS for comparison). When chute's peak is over
the target, the load is repeated with smaller `--batch-mb` values, then (default batch) with
the first 1/4 and 1/2 of the file, to show whether the batch or the file size drives memory.

    .venv/bin/python benchmarks/bench_memory.py [--rows 30000000] [--batch-mb 16 4] [--keep-data]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from _common import (CHUTE, COLUMNS_SQL, DATA, cluster, count, fresh_database, hide, print_machine, psql, psql_cmd,
                     show, table, timed_rss, prices_csv)

TARGET_MB = 600


# What chute's CSV reader does (chute/formats/csv.py: 64 MB blocks, threads), minus everything else.
READER_ONLY = ("import sys, pyarrow.csv as c; n = sum(b.num_rows for b in c.open_csv(sys.argv[1], "
               "c.ReadOptions(block_size=64 << 20, use_threads=True))); print(n)")


def measure(url: str, cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, max RSS in MB, stdout) of cmd under /usr/bin/time -v."""
    psql(url, "CHECKPOINT")
    seconds, rss, done = timed_rss(cmd)
    if rss is None:
        raise SystemExit("bench_memory needs /usr/bin/time (apt-get install time)")
    return seconds, rss, done.stdout


def write_head(src: Path, dst: Path, rows: int) -> int:
    """Copy the header and the first `rows` rows of src to dst, streaming."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.writelines(itertools.islice(f, rows + 1))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=30_000_000)
    ap.add_argument("--batch-mb", type=float, nargs="*", default=[16, 4],
                    help="smaller --batch-mb values to try when the default load peaks over the target")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated CSV in bench-data/")
    args = ap.parse_args()

    url = fresh_database(cluster(), "bench_memory")
    print_machine(url)
    csv = prices_csv(args.rows)
    size = csv.stat().st_size

    results = []  # (label, command, seconds, max RSS MB, rows)

    def record(label: str, cmd: list[str], rows: int, table_name: str | None) -> float:
        """Measure cmd; check that `table_name` (or, without one, the command's output) has `rows` rows."""
        seconds, rss, stdout = measure(url, cmd)
        got = count(url, table_name) if table_name else int(stdout)
        if got != rows:
            raise SystemExit(f"{label}: {got:,} rows, expected {rows:,}")
        results.append((label, cmd, seconds, rss, rows))
        print(f"{label}: {seconds:.1f} s, peak RSS {rss:.0f} MB")
        return rss

    def reset_big() -> None:
        psql(url, "DROP TABLE IF EXISTS big")
        if psql(url, "SELECT to_regclass('chute.files') IS NOT NULL") == "t":  # forget it was loaded
            psql(url, "DELETE FROM chute.files WHERE pipeline = 'load:public.big'")

    def chute(path: Path, *extra: str) -> list[str]:
        return [CHUTE, "load", str(path), "--into", "big", "--db", url, "--json", *extra]

    psql(url, "DROP TABLE IF EXISTS t")
    psql(url, f"CREATE TABLE t ({COLUMNS_SQL})")
    record("psql \\copy (baseline)", psql_cmd(url, f"\\copy t FROM '{csv}' CSV HEADER"), args.rows, "t")
    psql(url, "DROP TABLE t")
    reset_big()
    peak = record("chute load", chute(csv), args.rows, "big")
    if peak > TARGET_MB:
        for batch in args.batch_mb:
            reset_big()
            record(f"chute load --batch-mb {batch:g}", chute(csv, "--batch-mb", f"{batch:g}"), args.rows, "big")
        # Does the peak follow the batch size or the file size? Load the first 1/4 and 1/2 too.
        for part in (4, 2):
            head = DATA / f"prices_{args.rows}_head{part}.csv"
            n = write_head(csv, head, args.rows // part)
            reset_big()
            record(f"chute load, first {n:,} rows", chute(head), n, "big")
            head.unlink()
        # The CSV reader chute uses, alone: iterate pyarrow.csv.open_csv's batches, no database.
        record("pyarrow open_csv alone (no db)", [sys.executable, "-c", READER_ONLY, str(csv)], args.rows, None)

    print(f"\ncommands (URL={hide(url)}):")
    for label, cmd, *_ in results:
        print(f"  {show(['/usr/bin/time', '-v', *cmd])}")
    print(f"\n{args.rows:,} rows, {size / 1e9:.2f} GB")
    base = results[0][2]
    table(["variant", "wall s", "rows/s", "vs psql", "max RSS MB"],
          [[label, s, rows / s, f"{base / s:.2f}x" if label.startswith(("psql", "chute load", "chute load --"))
            and rows == args.rows else "", f"{rss:.0f}"] for label, cmd, s, rss, rows in results])
    print(f"\ntarget peak RSS < {TARGET_MB} MB with the defaults: {'met' if peak < TARGET_MB else 'NOT met'} "
          f"({peak:.0f} MB)")
    psql(url, "DROP TABLE IF EXISTS big")
    if not args.keep_data:
        csv.unlink()


if __name__ == "__main__":
    main()

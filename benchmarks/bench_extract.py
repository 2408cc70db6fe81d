"""bench_extract: `chute extract` of a PostgreSQL table to Parquet parts against `psql \\copy`
of the same rows to a CSV file.

* baseline: psql "$URL" -c "\\copy (SELECT * FROM orders ORDER BY updated_at, order_id) TO 'FILE' CSV HEADER"
* chute:    chute extract orders (keyset pages of --batch rows -> zstd Parquet parts), one full run

The source table has --rows rows of 8 columns (bigint key, int, smallint, numeric, text,
timestamptz cursor, ...), an index on (updated_at, order_id) as an incremental source would
have. Both read the same rows in the same order; each variant runs --repeat times, interleaved.
The machine is shared: run it only when told to (the lead runs it).

    .venv/bin/python benchmarks/bench_extract.py [--rows 2000000] [--batch 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import CHUTE, chute_json, cluster, fresh_database, median, print_machine, psql, psql_cmd, table, timed

FILL = """
CREATE TABLE orders (order_id bigint PRIMARY KEY, user_id integer NOT NULL, order_dow smallint NOT NULL,
                     total numeric(10,2) NOT NULL, status text NOT NULL, note text,
                     placed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO orders
SELECT i, (i::bigint * 7919) % 200000, i % 7, round((i % 10000) / 100.0, 2), (ARRAY['placed','delivered','cancelled'])[i % 3 + 1],
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || i END,
       timestamptz '2025-01-01' + i * interval '1 second',
       timestamptz '2025-01-01' + (i / 3) * interval '1 second'   -- ties: 3 rows per cursor value
  FROM generate_series(1, {rows}) AS i;
CREATE INDEX orders_updated ON orders (updated_at, order_id);
ANALYZE orders;
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    server = cluster()
    source = fresh_database(server, "bench_extract_source")
    warehouse = fresh_database(server, "bench_extract_warehouse")
    print_machine(source)
    psql(source, FILL.format(rows=args.rows))
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    project = work / "project"
    project.mkdir()
    (project / "chute.toml").write_text(
        '[project]\nname = "bench_extract"\n[landing]\npatterns = ["*.parquet"]\n'
        f'[database]\nurl = "{warehouse}"\n'
        f'[extract.orders]\nkind = "database"\nurl = "{source}"\ntable = "orders"\nkey = "order_id"\n'
        f'cursor = "updated_at"\nbatch_size = {args.batch}\n')
    csv = work / "orders.csv"
    baseline = psql_cmd(source, f"\\copy (SELECT * FROM orders ORDER BY updated_at, order_id) TO '{csv}' CSV HEADER")
    times: dict[str, list[float]] = {"psql \\copy (baseline)": [], "chute extract": []}
    try:
        for _ in range(args.repeat):
            seconds, _done = timed(baseline)
            times["psql \\copy (baseline)"].append(seconds)
            csv.unlink()
            psql(warehouse, "DROP TABLE IF EXISTS chute.watermarks")  # a full first run each time
            shutil.rmtree(project / "landing", ignore_errors=True)
            seconds, done = timed([CHUTE, "extract", "-p", str(project), "--json"])
            (report,) = chute_json(done)
            assert report["rows"] == args.rows, report
            times["chute extract"].append(seconds)
        base = min(times["psql \\copy (baseline)"])
        rows = []
        for name, xs in times.items():
            rows.append([name, f"{min(xs):.2f}", f"{median(xs):.2f}", f"{args.rows / min(xs):,.0f}",
                         f"{args.rows / median(xs):,.0f}", f"{base / min(xs):.2f}x"])
        table(["variant", "best s", "median s", "best rows/s", "median rows/s", "vs psql best"], rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""bench_peers: `chute load` against every peer that loads the same CSV into PostgreSQL.

One 2,000,000-row, 9-column CSV (the file of bench_load.py), loaded into a new table by
whole processes, interleaved, --repeat times each (best and median printed):

* psql:    psql "$URL" -c "\\copy t_psql FROM 'FILE' CSV HEADER" into a table made beforehand
           (its CREATE TABLE is not timed);
* adbc:    python -c: pyarrow.csv.read_csv(FILE) then ADBC's adbc_ingest (creates the table);
* pgpq:    python -c: the least a Python client can do, by hand: pyarrow's streaming CSV reader
           (types from its first block), each batch encoded by pgpq and sent by psycopg as
           binary COPY FREEZE into a table created in the same transaction (no ledger);
* duckdb:  python -c: DuckDB with its postgres extension as the pip wheels ship it,
           ATTACH 'URL' AS pg (TYPE postgres); CREATE TABLE pg.public.t_duck AS
           SELECT * FROM read_csv('FILE');
* chute:   chute load FILE --into t_chute --db URL --json.

Every table must hold every row; the column types of each are printed, and the CPU seconds
each used, in the client (the command) and in the server (every PostgreSQL process, from
/proc: the server must run on this machine). Target (issue 27): chute's time at most 0.9x
DuckDB's.

    .venv/bin/python benchmarks/bench_peers.py [--rows 2000000] [--repeat 3] [--keep-data]
"""

from __future__ import annotations

import argparse
import resource
import sys

from _common import (
    CHUTE,
    COLUMNS_SQL,
    chute_json,
    cluster,
    count,
    fresh_database,
    hide,
    median,
    prices_csv,
    print_machine,
    psql,
    psql_cmd,
    reset,
    server_cpu,
    show,
    table,
    timed,
)

TARGET = 0.9  # chute / DuckDB, best of each

ADBC = """
import sys, pyarrow.csv as pc, adbc_driver_postgresql.dbapi as pg
data = pc.read_csv(sys.argv[1])
with pg.connect(sys.argv[2]) as conn, conn.cursor() as cur:
    cur.adbc_ingest("t_adbc", data, mode="create")
    conn.commit()
"""

PGPQ = """
import sys, pyarrow as pa, pyarrow.csv as pc, psycopg
from pgpq import ArrowToPostgresBinaryEncoder
reader = pc.open_csv(sys.argv[1], read_options=pc.ReadOptions(block_size=8 << 20))
types = {pa.float64(): "float8", pa.int64(): "bigint", pa.date32(): "date", pa.string(): "text"}
columns = ", ".join(f'"{f.name}" {types[f.type]}' for f in reader.schema)
encoder = ArrowToPostgresBinaryEncoder(reader.schema)
with psycopg.connect(sys.argv[2]) as conn, conn.cursor() as cur:
    cur.execute(f"CREATE TABLE t_pgpq ({columns})")
    with cur.copy("COPY t_pgpq FROM STDIN (FORMAT binary, FREEZE)") as copy:
        copy.write(encoder.write_header())
        for batch in reader:
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())
"""

DUCKDB = """
import sys, duckdb
from duckdb_extensions import import_extension
import_extension("postgres")
con = duckdb.connect()
con.execute("LOAD postgres")
con.execute(f"ATTACH '{sys.argv[2]}' AS pg (TYPE postgres)")
con.execute(f"CREATE TABLE pg.public.t_duck AS SELECT * FROM read_csv('{sys.argv[1]}')")
"""


def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep-data", action="store_true", help="keep the generated CSV in bench-data/")
    args = ap.parse_args()

    url = fresh_database(cluster(), "bench_peers")
    print_machine(url)
    csv = prices_csv(args.rows)
    open(csv, "rb").read()  # warm the page cache so no variant pays for the first disk read

    variants = {
        "psql \\copy": ("t_psql", psql_cmd(url, f"\\copy t_psql FROM '{csv}' CSV HEADER")),
        "pyarrow + ADBC": ("t_adbc", [sys.executable, "-c", ADBC, str(csv), url]),
        "pyarrow + pgpq by hand": ("t_pgpq", [sys.executable, "-c", PGPQ, str(csv), url]),
        "DuckDB + postgres": ("t_duck", [sys.executable, "-c", DUCKDB, str(csv), url]),
        "chute load": ("t_chute", [CHUTE, "load", str(csv), "--into", "t_chute", "--db", url, "--json"]),
    }
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}  # (client, server) CPU seconds
    inner: list[dict] = []
    for r in range(args.repeat):
        for label, (name, cmd) in variants.items():
            reset(url, name)
            if name == "t_psql":
                psql(url, f"CREATE TABLE t_psql ({COLUMNS_SQL})")
            client, server = client_cpu(), server_cpu(url)
            seconds, done = timed(cmd)
            cpu[label].append((client_cpu() - client, server_cpu(url) - server))
            rows = count(url, name)
            if rows != args.rows:
                raise SystemExit(f"{label}: {rows:,} rows in {name}, expected {args.rows:,}")
            if name == "t_chute":
                info = chute_json(done)
                inner.append({"seconds": info["seconds"], **info["timings"]})
            times[label].append(seconds)
            print(f"run {r + 1}: {label:20} {seconds:7.2f} s  {args.rows / seconds:>12,.0f} rows/s  "
                  f"CPU s: client {cpu[label][-1][0]:.2f}, server {cpu[label][-1][1]:.2f}", flush=True)

    print(f"\ncommands (URL={hide(url)}):")
    for label, (_, cmd) in variants.items():
        print(f"  {label}: {show(cmd)}")
    print("\ncolumn types:")
    for label, (name, _) in variants.items():
        types = psql(url, "SELECT string_agg(format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
                          f"FROM pg_attribute WHERE attrelid = '{name}'::regclass AND attnum > 0")
        print(f"  {label:20} {types}")
    best_run = min(inner, key=lambda x: x["seconds"])
    print("chute's own timings, best run:", {k: round(v, 3) for k, v in best_run.items()})

    duck = min(times["DuckDB + postgres"])
    print()
    table(["tool", "best s", "median s", "rows/s (best)", "/ DuckDB (best)", "client CPU s", "server CPU s"],
          [[label, min(ts), median(ts), args.rows / min(ts), f"{min(ts) / duck:.2f}x",
            median([c for c, _ in cpu[label]]), median([s for _, s in cpu[label]])] for label, ts in times.items()])
    print("(CPU: medians; client = the command's process and its children, server = every PostgreSQL process, autovacuum's included)")
    ratio = min(times["chute load"]) / duck
    print(f"\nchute / DuckDB = {ratio:.2f}x (target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}")
    if not args.keep_data:
        csv.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

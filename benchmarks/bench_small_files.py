"""bench_small_files: parsing many small CSV files, one by one against together as one text.

The stocks example's 1,000 "top company" files (~100 KB each, 2.1 M rows; generated as in
bench_stocks.py) are read into memory first, then parsed in this process, in groups as
`chute run` makes them (batch_mb, 64 MB), two ways:

    alone     every file parsed on its own (Runner._parsed: reader, row numbers, file name)
    together  formats/csv.py: read_together, then the file names and row numbers added

Both must give the same rows. Printed: wall and CPU seconds of this process (the parse uses
every core), the best of --repeat runs. No database is involved.

    .venv/bin/python benchmarks/bench_small_files.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from _common import machine, median, stocks_project, table


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import polars as pl

    from chute.config.project import load_project
    from chute.run.runner import Runner
    from chute.run.plan import build_plan, provided_values

    m = machine()
    print(f"# {m['date']}  nproc={m['nproc']}  memory={m['memory_gb']} GB  cpu={m['cpu']}  python {m['python']}")
    project = load_project(stocks_project("stocks-7192-s1", 7192, 1))
    runner = Runner(project, "postgresql://unused")  # never connects: only its reading is used
    plan = build_plan(project)  # the file filter keeps the top companies' files
    static = plan.run_static(provided_values(project))
    entries = [e for e in runner.zone.list() if plan.wants(e.name, static) is None]
    groups = list(runner._groups(sorted(entries, key=lambda e: e.name)))
    buffers = {e.name: runner.zone.read(e) for e in entries}
    runner.zone.read = lambda entry: buffers[entry.name]  # parse only: the bytes are in memory
    size = sum(b.size for b in buffers.values())
    print(f"{len(entries):,} files, {size / 1e6:.0f} MB, {len(groups)} groups\n")

    def alone(pool):
        return [r for g in groups for r in pool.map(lambda e: runner._read(e), g)]

    def together(pool):
        return [r for g in groups for r in runner._read_together(g, pool)]

    rec: dict[str, list[tuple[float, float]]] = {"alone": [], "together": []}
    rows = {}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(args.repeat):
            for name, fn in (("alone", alone), ("together", together)):
                t0, c0 = time.perf_counter(), cpu()
                ready = fn(pool)
                rec[name].append((time.perf_counter() - t0, cpu() - c0))
                rows[name] = pl.concat([r.frame for r in ready], how="diagonal_relaxed")
    if not rows["alone"].equals(rows["together"]):
        raise SystemExit("the two ways gave different rows")
    table(["", "best wall s", "median wall s", "best CPU s", "median CPU s"],
          [[k, min(w for w, _ in v), median([w for w, _ in v]), min(c for _, c in v), median([c for _, c in v])]
           for k, v in rec.items()])
    print(f"\nsame rows both ways: {rows['alone'].height:,} rows")


if __name__ == "__main__":
    main()

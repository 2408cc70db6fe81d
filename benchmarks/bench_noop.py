"""bench_noop: a `chute run` with nothing new over 10,000 already-loaded files.

    chute init DIR --example stocks --files 10000 --seed 2
    (reference/top_companies.txt rewritten to name every landing file, so all 10,000 load)
    chute run -p DIR --db URL --json          once: the first load
    chute run -p DIR --db URL --json          --runs times: nothing new, 0 files loaded

Target (from the issue): the run with nothing new finishes in under 1 second. Reported: the
wall time of the whole command (process start included) and the run's own `seconds`.
Baselines in the same run: `chute --version` (interpreter and CLI start) and
`chute status --json` (start, load the project, read the ledger) on the same project.

    .venv/bin/python benchmarks/bench_noop.py [--files 10000] [--seed 2] [--runs 5] [--keep-data]
"""

from __future__ import annotations

import argparse
import shutil

from _common import (CHUTE, chute_json, cluster, fresh_database, hide, median, print_machine, psql, show,
                     stocks_project, table, timed)

TARGET_S = 1.0


def name_every_file(project) -> int:
    """Rewrite top_companies.txt to list every landing file, in the generator's quoted format."""
    names = sorted(p.name.replace(".us.txt", ".us.csv") for p in (project / "landing").iterdir())
    quoted = [f"'{n}'" for n in names]
    text = ", ".join(quoted[:-1]) + "," + quoted[-1] if len(quoted) > 1 else "".join(quoted)
    (project / "reference" / "top_companies.txt").write_text(text + "\n")
    return len(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="timed runs with nothing new")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated project in bench-data/")
    args = ap.parse_args()

    base = cluster()
    print_machine(base)
    project = stocks_project(f"noop-{args.files}-s{args.seed}", args.files, args.seed)
    files = name_every_file(project)

    url = fresh_database(base, "bench_noop")
    run = [CHUTE, "run", "-p", str(project), "--db", url, "--json"]
    wall, done = timed(run)
    first = chute_json(done)
    if first["files_loaded"] != files:
        raise SystemExit(f"first run loaded {first['files_loaded']} of {files} files: {first.get('error')}")
    print(f"first load: {files:,} files, {first['rows_loaded']:,} rows in {wall:.1f} s")

    walls, reported = [], []
    for i in range(args.runs):
        wall, done = timed(run)
        summary = chute_json(done)
        if summary["files_loaded"] or summary["unchanged"] != files:
            raise SystemExit(f"run {i + 1}: {summary['files_loaded']} loaded, {summary['unchanged']} unchanged")
        walls.append(wall)
        reported.append(summary["seconds"])
        print(f"nothing-new run {i + 1}: {wall:.3f} s wall, {summary['seconds']:.3f} s reported, "
              f"{summary['unchanged']:,} unchanged")

    version = [CHUTE, "--version"]
    status = [CHUTE, "status", "-p", str(project), "--db", url, "--json"]
    base_v = [timed(version)[0] for _ in range(args.runs)]
    base_s = [timed(status)[0] for _ in range(args.runs)]

    print(f"\ncommands (URL={hide(url)}):\n  {show(run)}\n  {show(version)}\n  {show(status)}\n")
    table(["", "best s", "median s", "worst s"], [
        ["chute run, nothing new: wall", min(walls), median(walls), max(walls)],
        ["chute run, nothing new: reported seconds", min(reported), median(reported), max(reported)],
        ["baseline: chute --version", min(base_v), median(base_v), max(base_v)],
        ["baseline: chute status --json", min(base_s), median(base_s), max(base_s)],
    ])
    print(f"per file: {1000 * median(reported) / files:.3f} ms reported, "
          f"{1000 * (median(walls) - median(base_v)) / files:.3f} ms wall beyond `chute --version`")
    print(f"\ntarget nothing-new run < {TARGET_S:.0f} s over {files:,} files: "
          f"{'met' if max(walls) < TARGET_S else 'NOT met'} (worst wall {max(walls):.3f} s, "
          f"median reported {median(reported):.3f} s)")
    if not args.keep_data:
        psql(base, 'DROP DATABASE IF EXISTS "bench_noop" WITH (FORCE)')  # ~21 M rows
        shutil.rmtree(project)


if __name__ == "__main__":
    main()

"""profile_load: where one `chute load` of the 2 M-row CSV spends its time, beside DuckDB's whole run.

Runs, interleaved, --repeat times each into a new table:

* chute: `chute load FILE --into t_profile --db URL --json`, in this interpreter with a small
  driver that marks, from the process's start: the CLI imported, `chute.run.load_file` imported
  (the libraries a load needs), inference's start and end, the runner's start, the first COPY
  write, each COPY statement's end (one per block of the file), and the end;
* duckdb: DuckDB + its postgres extension, `CREATE TABLE pg.t AS SELECT * FROM read_csv(...)`,
  as bench_peers runs it (skipped without duckdb in this interpreter).

For each run: the wall time (whole process), the server's CPU seconds (every PostgreSQL
process, as bench_peers reads them from /proc) and, for chute, the phases: before the first
row (imports, inference, the run's set-up and first block), the COPY (first write to the last
COPY's end) and after it (the commit with the ledger rows). This is the profile issue 27 asks
for: it shows what the server's own CPU for the rows leaves to the client.

With --timeline, each process's CPU is also sampled from /proc every 20 ms, and the last run
of each tool is printed as a timeline of 100 ms steps: the client's CPU (the command and its
threads) and the server's (every PostgreSQL process), in % of one core. A server step under
100% while rows are being sent is the server waiting for the client.

    .venv/bin/python benchmarks/profile_load.py [--rows 2000000] [--repeat 3] [--timeline] [--keep-data]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

from _common import (chute_json, cluster, fresh_database, median, prices_csv, print_machine, psql, reset,
                     server_cpu, table)
from bench_peers import DUCKDB

DRIVER = r"""
import os, sys, time
t0 = time.perf_counter()
marks = []
def mark(what):
    marks.append((round(time.perf_counter() - t0, 4), what))
import chute.cli.main as cli
mark("cli imported")
import chute.run.load_file as load_file
mark("libraries imported")
from psycopg import Copy
from chute.run.runner import Runner

def wrap(owner, name, before, after):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        before and mark(before)
        result = original(*args, **kwargs)
        after and mark(after)
        return result
    setattr(owner, name, wrapped)

wrap(load_file, "_infer", "inference start", "inference end")
wrap(Runner, "run", "run start", None)
wrap(Copy, "__exit__", None, "COPY end")
write = Copy.write
def first_write(self, data):
    if not any(w == "first COPY write" for _, w in marks):
        mark("first COPY write")
    return write(self, data)
Copy.write = first_write
exit_ = os._exit
def leave(code):
    mark("end")
    print(json.dumps(marks), file=sys.stderr)
    exit_(code)
import json
os._exit = leave
sys.argv = ["chute", "load", sys.argv[1], "--into", "t_profile", "--db", sys.argv[2], "--json"]
cli.entry()
"""


def run(cmd: list[str], url: str, samples: list | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run `cmd`; with a `samples` list, (seconds, client ticks, server ticks) every 20 ms go into it."""
    before = server_cpu(url)
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        if samples is not None:
            while proc.poll() is None:
                samples.append((time.perf_counter() - t0, *_ticks(proc.pid)))
                time.sleep(0.02)
        out, err = proc.communicate()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{cmd[:3]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, server_cpu(url) - before, done


def _ticks(root: int) -> tuple[int, int]:
    """CPU ticks so far of the process tree under `root` and of every process named postgres."""
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    head, tail = f.read().rsplit(")", 1)
            except OSError:
                continue
            fields = tail.split()
            procs[int(name)] = (head.split("(", 1)[1], int(fields[1]), int(fields[11]) + int(fields[12]))
    client = server = 0
    for pid, (comm, parent, ticks) in procs.items():
        if comm == "postgres":
            server += ticks
            continue
        while pid > 1 and pid != root:
            pid = procs.get(pid, ("", 0, 0))[1]
        if pid == root:
            client += ticks
    return client, server


def print_timeline(label: str, samples: list[tuple[float, int, int]], step: float = 0.1) -> None:
    """CPU per `step` seconds, in % of one core; a bar of C (client) and S (server), 10% a letter.
    The server's processes that end during the run (its backend) drop their ticks from the sum:
    a negative step is such an end, shown as blank."""
    tick = os.sysconf("SC_CLK_TCK")
    steps: dict[int, list[int]] = {}
    for (_, c0, s0), (t, c1, s1) in itertools.pairwise(samples):
        into = steps.setdefault(int(t / step), [0, 0])
        into[0] += c1 - c0
        into[1] += s1 - s0
    print(f"\n{label}: CPU per {step:.1f} s (% of one core; C client, S server)")
    for i in sorted(steps):
        client, server = (100 * v / tick / step for v in steps[i])
        server = max(server, 0)
        print(f"  {i * step:4.1f} s  client {client:4.0f}%  server {server:4.0f}%  "
              f"{'C' * round(client / 10)}|{'S' * round(server / 10)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeline", action="store_true", help="print each tool's CPU over time (its last run)")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated CSV in bench-data/")
    args = ap.parse_args()

    url = fresh_database(cluster(), "profile_load")
    print_machine(url)
    csv = prices_csv(args.rows)
    csv.read_bytes()  # warm the page cache
    try:
        import duckdb  # noqa: F401
        have_duckdb = True
    except ImportError:
        have_duckdb = False
        print("duckdb is not installed in this interpreter: DuckDB skipped (pip install -e '.[bench]')")

    rows = []
    timelines: dict[str, list] = {}
    for r in range(args.repeat):
        for tool in ("chute", "duckdb") if have_duckdb else ("chute",):
            reset(url, "t_profile" if tool == "chute" else "t_duck")
            samples: list | None = None
            if args.timeline:
                samples = timelines[tool] = []
            if tool == "chute":
                seconds, server, done = run([sys.executable, "-c", DRIVER, str(csv), url], url, samples)
                chute_json(done)  # the load succeeded
                timeline = json.loads(done.stderr.strip().splitlines()[-1])
                marks = {w: t for t, w in reversed(timeline)}  # the first time of each mark
                ends = [t for t, w in timeline if w == "COPY end"]
                phases = {
                    "imports": marks["libraries imported"],
                    "inference": marks["inference end"] - marks["inference start"],
                    "to first row": marks["first COPY write"],
                    "COPY": ends[-1] - marks["first COPY write"],
                    "after COPY": marks["end"] - ends[-1],
                }
            else:
                seconds, server, _ = run([sys.executable, "-c", DUCKDB, str(csv), url], url, samples)
                phases = {}
            got = int(psql(url, f"SELECT count(*) FROM {'t_profile' if tool == 'chute' else 't_duck'}"))
            if got != args.rows:
                raise SystemExit(f"{tool}: {got:,} rows, expected {args.rows:,}")
            rows.append((tool, seconds, server, phases))
            shown = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
            print(f"run {r + 1}: {tool:6} wall {seconds:5.2f} s, server CPU {server:5.2f} s"
                  f"{', ' + shown if shown else ''}", flush=True)

    print()
    names = ["imports", "inference", "to first row", "COPY", "after COPY"]
    out = []
    for tool in ("chute", "duckdb"):
        mine = [r for r in rows if r[0] == tool]
        if mine:
            out.append([tool, median([r[1] for r in mine]), median([r[2] for r in mine]),
                        *[median([r[3][n] for r in mine]) if mine[0][3] else "" for n in names]])
    table(["tool", "wall s", "server CPU s", *[f"{n} s" for n in names]], out)
    print("(medians; chute's phases from the process's start: 'to first row' includes imports and inference)")
    for tool, samples in timelines.items():
        print_timeline(f"{tool}, run {args.repeat}", samples)
    if not args.keep_data:
        csv.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""bench_latency: event-to-queryable latency of `chute watch`, and its CPU use while idle.

    chute watch -p DIR --db URL                 a project watching DIR/landing (CSV, one table)
    200 files of 1,000 rows dropped one at a time at a steady rate (write a hidden name, rename)
    latency of a file = when its rows are visible to another connection - when it was complete

Visibility is polled every 5 ms through its own connection: a file's ledger row commits in
the same transaction as its rows, so the first poll that sees the row sees the data.
Then the watch sits idle for --idle seconds and its CPU time is read from /proc/<pid>/stat
(utime + stime), in % of one core.

Baseline in the same run: a plain loop that runs `psql \\copy` on each file as soon as it is
complete (told directly by the dropper: no detection delay at all), into a table of the same
shape; latency = when psql returned - when the file was complete.

Targets (issue 4): p50 < 300 ms, p95 < 1 s over 200 files; idle CPU < 1% of a core.
With --max-batch-delay the watch runs in micro-batch mode ([watch] max_batch_delay): latency
is then bounded by that delay instead (see docs/streaming.md).

    .venv/bin/python benchmarks/bench_latency.py [--files 200] [--rows 1000] [--rate 5] [--idle 30]
                                                 [--max-batch-delay S] [--keep-data]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from _common import CHUTE, DATA, cluster, fresh_database, hide, print_machine, psql, sh, table

TARGET_P50, TARGET_P95, TARGET_IDLE = 0.300, 1.0, 1.0

TOML = """
[project]
name = "latency"

[landing]
patterns = ["*.csv"]

[source.columns]
id = "bigint"

[tables.rows]
columns = {{ id = "bigint", name = "text", amount = "double", source_file = "text" }}

[watch]
rescan = 3600
{extra}
"""


def csv_body(n: int, rows: int) -> str:
    start = n * rows
    return "id,name,amount\n" + "".join(f"{i},name-{i},{i * 0.25}\n" for i in range(start, start + rows))


def drop(landing: Path, name: str, text: str) -> float:
    """Write under a hidden name, rename into place; return when the file was complete."""
    tmp = landing / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(landing / name)
    return time.time()


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def watcher_loop(url: str, seen: dict[str, float], stop: threading.Event) -> None:
    """Poll the ledger every 5 ms; record when each file's rows became visible."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        last = 0
        while not stop.is_set():
            try:
                found = conn.execute("SELECT file_id, name FROM chute.files WHERE file_id > %s AND status = 'loaded'",
                                     (last,)).fetchall()
            except psycopg.errors.UndefinedTable:
                found = []
            now = time.time()
            for file_id, name in found:
                seen.setdefault(name, now)
                last = max(last, file_id)
            time.sleep(0.005)


def run_chute(project: Path, url: str, files: int, rows: int, rate: float, idle: float) -> dict:
    landing = project / "landing"
    log = (project / "watch.log").open("w")
    proc = subprocess.Popen([CHUTE, "watch", "-p", str(project), "--db", url], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "run (startup)" not in (project / "watch.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"chute watch did not start:\n{(project / 'watch.log').read_text()}")
            time.sleep(0.05)
        time.sleep(1.0)  # the start-up run ends
        seen: dict[str, float] = {}
        stop = threading.Event()
        poller = threading.Thread(target=watcher_loop, args=(url, seen, stop), daemon=True)
        poller.start()
        landed: dict[str, float] = {}
        for n in range(files):
            name = f"f{n:05d}.csv"
            landed[name] = drop(landing, name, csv_body(n, rows))
            time.sleep(max(0.0, landed[name] + 1 / rate - time.time()))
        deadline = time.monotonic() + 120
        while len(seen) < files and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        poller.join()
        if len(seen) < files:
            raise SystemExit(f"only {len(seen)} of {files} files loaded in time; see {project / 'watch.log'}")
        runs = int(psql(url, "SELECT count(DISTINCT run_id) FROM chute.files"))
        loaded = int(psql(url, "SELECT count(*) FROM rows"))
        time.sleep(2.0)  # let the last run's after-work finish before measuring idle
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    latencies = [seen[n] - landed[n] for n in landed]
    return {"latencies": latencies, "runs": runs, "rows": loaded, "idle_cpu": 100 * (c1 - c0) / (t1 - t0)}


def run_baseline(folder: Path, url: str, files: int, rows: int, rate: float) -> dict:
    psql(url, "CREATE TABLE rows (id bigint, name text, amount double precision)")
    jobs: queue.Queue[tuple[Path, float] | None] = queue.Queue()
    done: list[float] = []

    def loop() -> None:
        while (job := jobs.get()) is not None:
            path, complete = job
            sh(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                f"\\copy rows FROM '{path}' WITH (FORMAT csv, HEADER)"])
            done.append(time.time() - complete)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        name = f"f{n:05d}.csv"
        complete = drop(folder, name, csv_body(n, rows))
        jobs.put((folder / name, complete))
        time.sleep(max(0.0, complete + 1 / rate - time.time()))
    jobs.put(None)
    worker.join()
    return {"latencies": done, "rows": int(psql(url, "SELECT count(*) FROM rows"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000, help="rows per file")
    ap.add_argument("--rate", type=float, default=5.0, help="files dropped per second")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle watch to measure CPU over")
    ap.add_argument("--max-batch-delay", type=float, default=None,
                    help="run the watch in micro-batch mode with this [watch] max_batch_delay")
    ap.add_argument("--keep-data", action="store_true", help="keep the project in bench-data/")
    args = ap.parse_args()

    base = cluster()
    print_machine(base)
    work = DATA / "latency"
    shutil.rmtree(work, ignore_errors=True)
    project = work / "project"
    (project / "landing").mkdir(parents=True)
    extra = f"max_batch_delay = {args.max_batch_delay}" if args.max_batch_delay is not None else ""
    (project / "chute.toml").write_text(TOML.format(extra=extra))
    url = fresh_database(base, "bench_latency")
    print(f"chute watch -p {project.relative_to(DATA.parent)} --db {hide(url)}; {args.files} files x "
          f"{args.rows} rows at {args.rate:g}/s{'; ' + extra if extra else ''}")
    try:
        chute = run_chute(project, url, args.files, args.rows, args.rate, args.idle)
        base_url = fresh_database(base, "bench_latency_psql")
        baseline = run_baseline(work / "psql-landing", base_url, args.files, args.rows, args.rate)
    finally:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
    want = args.files * args.rows
    if chute["rows"] != want or baseline["rows"] != want:
        raise SystemExit(f"rows loaded: chute {chute['rows']}, psql {baseline['rows']}, expected {want}")

    def ms(x: float) -> float:
        return round(1000 * x, 1)

    rows = []
    for label, r in (("chute watch", chute), ("psql \\copy per file (no detection)", baseline)):
        lat = r["latencies"]
        rows.append([label, ms(statistics.median(lat)), ms(percentile(lat, 95)), ms(max(lat)),
                     r.get("runs", args.files)])
    table(["loader", "p50 ms", "p95 ms", "max ms", "transactions/runs"], rows)
    p50, p95 = statistics.median(chute["latencies"]), percentile(chute["latencies"], 95)
    print(f"chute watch idle CPU over {args.idle:g} s: {chute['idle_cpu']:.2f}% of one core")
    print(f"targets: p50 < {ms(TARGET_P50)} ms {'MET' if p50 < TARGET_P50 else 'MISSED'}; "
          f"p95 < {ms(TARGET_P95)} ms {'MET' if p95 < TARGET_P95 else 'MISSED'}; "
          f"idle CPU < {TARGET_IDLE:g}% {'MET' if chute['idle_cpu'] < TARGET_IDLE else 'MISSED'}")


if __name__ == "__main__":
    main()

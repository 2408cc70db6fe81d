"""Shared helpers for the benchmarks: the embedded cluster, timed commands, data, tables.

Everything runs through the chute CLI and psql as subprocesses, timed with perf_counter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
BIN = Path(sys.executable).parent
CHUTE = str(BIN / "chute")


def sh(cmd: list[str], *, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {show(cmd)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of the whole command, process start included."""
    t0 = time.perf_counter()
    done = sh(cmd, **kw)
    return time.perf_counter() - t0, done


TIME = "/usr/bin/time"  # GNU time: -v reports the command's peak memory


def timed_rss(cmd: list[str], **kw) -> tuple[float, float | None, subprocess.CompletedProcess]:
    """Wall time and peak RSS in MB (`/usr/bin/time -v`'s "Maximum resident set size") of the whole
    command; RSS None when /usr/bin/time is missing (apt-get install time)."""
    if not os.path.exists(TIME):
        seconds, done = timed(cmd, **kw)
        return seconds, None, done
    seconds, done = timed([TIME, "-v", *cmd], **kw)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return seconds, kb / 1024, done


def show(cmd: list[str]) -> str:
    """The command as one shell line, run from the repository root, the database URL as "$URL"."""
    def quote(arg: str) -> str:
        arg = str(arg).replace(str(ROOT) + "/", "")
        if arg.startswith(("postgresql://", "postgres://")):
            return '"$URL"'
        if "'" in arg and not any(c in arg for c in '"$`!'):
            return f'"{arg}"'
        return shlex.quote(arg)
    return " ".join(quote(c) for c in cmd)


def hide(url: str) -> str:
    """The URL with its password hidden."""
    parts = urlsplit(url)
    return url.replace(":" + parts.password + "@", ":***@") if parts.password else url


def cluster(folder: str = "pg-project") -> str:
    """Start (or reuse) the embedded cluster in bench-data/FOLDER; return its URL."""
    project = str(DATA / folder)
    DATA.mkdir(exist_ok=True)
    sh([CHUTE, "db", "start", "-p", project])
    return sh([CHUTE, "db", "url", "-p", project]).stdout.strip()


def fresh_database(url: str, name: str) -> str:
    """Drop and re-create database NAME on the same server; return its URL (a first load, empty ledger)."""
    psql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def psql(url: str, command: str) -> str:
    """Run one SQL statement or psql meta-command (e.g. \\copy)."""
    return sh(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", command]).stdout.strip()


def psql_cmd(url: str, command: str) -> list[str]:
    return ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command]


def reset(url: str, name: str) -> None:
    """Drop the table and forget chute's ledger rows for it, so the next load is a first load."""
    psql(url, f"DROP TABLE IF EXISTS {name}")
    if psql(url, "SELECT to_regclass('chute.files') IS NOT NULL") == "t":
        psql(url, f"DELETE FROM chute.files WHERE pipeline = 'load:public.{name}'")
    psql(url, "CHECKPOINT")  # start each run with no dirty buffers left by the previous one


def server_cpu(url: str) -> float:
    """CPU seconds the server's processes have used so far: the postmaster's own and its ended
    children's (each connection's backend is reaped when it closes) and the live ones'. The
    server must run on this machine."""
    data = psql(url, "SELECT setting FROM pg_settings WHERE name = 'data_directory'")
    with open(os.path.join(data, "postmaster.pid")) as f:
        pid = int(f.readline())
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    total = sum(int(x) for x in stat(pid)[11:15])  # utime, stime, cutime, cstime
    for child in os.listdir("/proc"):
        if child.isdigit():
            try:
                f = stat(int(child))
                if int(f[1]) == pid:  # a live child: the checkpointer, walwriter, ...
                    total += int(f[11]) + int(f[12])
            except (OSError, IndexError):
                pass
    return total / tick


def chute_json(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)


def count(url: str, table: str) -> int:
    return int(psql(url, f"SELECT count(*) FROM {table}"))


def machine() -> dict:
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
            "cpu": cpu, "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "psql": sh(["psql", "--version"]).stdout.strip()}


def print_machine(url: str) -> None:
    m = machine()
    server = psql(url, "SHOW server_version")
    print(f"# {m['date']}  nproc={m['nproc']}  memory={m['memory_gb']} GB  cpu={m['cpu']}  "
          f"python {m['python']}  PostgreSQL server {server}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def table(header: list[str], rows: list[list]) -> None:
    """Print a small aligned table."""
    cells = [[_fmt(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# -- the synthetic price table used by bench_load and bench_memory ---------------------------
COLUMNS_SQL = ("day date, open double precision, high double precision, low double precision, "
               "close double precision, adj_close double precision, vwap double precision, "
               "volume bigint, symbol text")
SYMBOLS = 1000  # (day, symbol) is unique: row i is day i // SYMBOLS of symbol i % SYMBOLS


def write_prices_csv(path: Path, rows: int, seed: int = 1, chunk: int = 1_000_000) -> int:
    """Stream `rows` rows of 9 columns (date, 6 floats, bigint, text) to `path`; return its size."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    symbols = sorted({"".join(rng.choice(letters, size=rng.integers(3, 6))) for _ in range(5 * SYMBOLS)})
    symbols = np.array(rng.permutation(symbols)[:SYMBOLS])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as out:
        for start in range(0, rows, chunk):
            i = np.arange(start, min(rows, start + chunk))
            close = np.round(rng.uniform(5, 900, i.size), 3)
            frame = pl.DataFrame({
                "day": (np.datetime64("1950-01-01") + (i // SYMBOLS)).astype("datetime64[D]"),
                "open": np.round(close * rng.uniform(0.97, 1.03, i.size), 3),
                "high": np.round(close * 1.04, 3),
                "low": np.round(close * 0.96, 3),
                "close": close,
                "adj_close": np.round(close * 0.99, 3),
                "vwap": np.round(close * rng.uniform(0.98, 1.02, i.size), 3),
                "volume": rng.integers(100, 5_000_000, i.size),
                "symbol": symbols[i % SYMBOLS],
            })
            frame.write_csv(out, include_header=start == 0)
    tmp.replace(path)
    return path.stat().st_size


def prices_csv(rows: int) -> Path:
    """bench-data/prices_<rows>.csv, generated on first use."""
    csv = DATA / f"prices_{rows}.csv"
    if not csv.exists():
        size = write_prices_csv(csv, rows)
        print(f"generated {csv.relative_to(DATA.parent)}: {rows:,} rows, {size / 1e6:,.0f} MB")
    return csv


def stocks_project(name: str, files: int, seed: int) -> Path:
    """bench-data/<name>: the stocks example with generated files, made on first use."""
    project = DATA / name
    if not (project / "chute.toml").exists():
        shutil.rmtree(project, ignore_errors=True)
        init = [CHUTE, "init", str(project), "--example", "stocks", "--files", str(files), "--seed", str(seed),
                "--json"]
        seconds, done = timed(init)
        data = chute_json(done)["data"]
        print(f"{show(init)}: {data['files']:,} files, {data['rows']:,} rows ({data['top_files']:,} top files, "
              f"{data['top_rows']:,} rows) in {seconds:.1f} s")
    return project

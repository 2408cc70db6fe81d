"""bench_ui: the dashboard's pages over a large ledger (docs/benchmarks.md, "dashboard at scale").

    chute init DIR --example stocks --files 12 --seed 3; chute run -p DIR --db URL   (the table, the schema)
    then, in SQL (generate_series): 10,000 runs over the last year, 100,000 file versions (10 a
    run: loaded, with rejects, failed, skipped), 50,000 rejects, 1,000 dead letters; ANALYZE

Each page is requested through the ASGI app (FastAPI's TestClient, in this process: server
time, no network) once to warm up, then --requests times; the median is reported. Beside it,
the page's slowest SQL statement as the app ran it (its "main query"), and that same statement,
its parameters bound, run alone through psql (`\\timing`, median of 5). Target: each page under
300 ms.

    .venv/bin/python benchmarks/bench_ui.py [--runs 10000] [--files 100000] [--requests 7] [--keep-data]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from contextlib import contextmanager

from _common import CHUTE, cluster, fresh_database, hide, median, print_machine, psql, show, sh, stocks_project, table

TARGET_MS = 300
PAGES = ["/", "/tables", "/tables/historical_stocks_data", "/trends", "/trends?range=all", "/runs",
         "/runs?status=failed", "/runs/{last_run}", "/files", "/files?q=f0099", "/files?status=failed",
         "/files/{last_file}", "/quarantine", "/quarantine?check=max", "/schedules", "/lineage", "/actions",
         "/pipeline"]

SEED_SQL = """
INSERT INTO chute.runs (pipeline, trigger, status, started_at, ended_at, files_seen, files_loaded, files_failed,
                        files_skipped, rows_read, rows_loaded, rows_rejected, details)
SELECT 'stocks', (ARRAY['watch', 'schedule', 'manual', 'folder'])[1 + i % 4],
       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
       now() - make_interval(secs => ({runs} - i) * 3153.6 + 60),
       now() - make_interval(secs => ({runs} - i) * 3153.6 + 60 - (1 + i % 37)),
       10, 9, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, 0, 20000, 19900, 100,
       jsonb_build_object('tables', jsonb_build_object('historical_stocks_data', 19900))
  FROM generate_series(1, {runs}) i;
INSERT INTO chute.files (pipeline, name, uri, size, sha256, status, run_id, rows_read, rows_loaded, rows_rejected,
                         error, first_seen_at, updated_at)
SELECT 'stocks', format('f%s.us.txt', lpad(i::text, 6, '0')), format('file:///landing/f%s.us.txt', i), 100000 + i,
       md5(i::text) || md5('x' || i),
       CASE WHEN i % 200 = 0 THEN 'failed' WHEN i % 10 = 1 THEN 'loaded_with_rejects'
            WHEN i % 97 = 0 THEN 'skipped' ELSE 'loaded' END,
       r.run_id, 2000, 1990, CASE WHEN i % 10 = 1 THEN 10 ELSE 0 END,
       CASE WHEN i % 200 = 0 THEN 'bad data: column Open is not a number' END, r.started_at, r.ended_at
  FROM generate_series(1, {files}) i
  JOIN (SELECT run_id, started_at, ended_at, row_number() OVER (ORDER BY run_id) AS n FROM chute.runs
         WHERE pipeline = 'stocks' AND details ? 'tables' AND rows_loaded = 19900) r
    ON r.n = 1 + (i - 1) * {runs} / {files};
INSERT INTO chute.rejects (pipeline, run_id, file_id, file_name, file_sha256, target_table, row_number, line_number,
                           column_name, check_name, reason, value, raw_record, created_at)
SELECT f.pipeline, f.run_id, f.file_id, f.name, f.sha256, 'public.historical_stocks_data', k, k + 1, 'volume_traded',
       'max', 'volume_traded 3000000 is above the maximum 2000000', '3000000',
       '2017-01-02,1.0,1.1,0.9,1.05,3000000,0', f.updated_at
  FROM chute.files f CROSS JOIN generate_series(1, 5) k
 WHERE f.status = 'loaded_with_rejects' AND f.name LIKE 'f%';
INSERT INTO chute.dead_letters (pipeline, kind, name, version, error, created_at)
SELECT 'stocks', 'file', name, sha256, error, updated_at FROM chute.files WHERE status = 'failed' AND name LIKE 'f%'
ON CONFLICT DO NOTHING;
ANALYZE;
"""


@contextmanager
def recording():
    """Every statement the app runs, with its parameters and time (psycopg's Cursor.execute, wrapped)."""
    import psycopg

    seen: list[tuple[float, object, object]] = []
    original = psycopg.Cursor.execute

    def execute(self, query, params=None, **kw):
        t0 = time.perf_counter()
        try:
            return original(self, query, params, **kw)
        finally:
            seen.append((time.perf_counter() - t0, query, params))
    psycopg.Cursor.execute = execute
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = original


def literal(url: str, query, params) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return psycopg.ClientCursor(conn).mogrify(query, params)


def psql_ms(url: str, statement: str, times: int = 5) -> float:
    """The statement alone in psql, `\\timing` as psql reports it (rows discarded), median of TIMES."""
    found = []
    for _ in range(times):
        done = subprocess.run(["psql", url, "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1",
                               "-c", "\\timing on", "-c", statement], capture_output=True, text=True, check=True)
        found += [float(m) for m in re.findall(r"Time: ([\d.]+) ms", done.stdout)]
    return median(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=7)
    ap.add_argument("--keep-data", action="store_true")
    args = ap.parse_args()

    url = fresh_database(cluster(), "bench_ui")
    print_machine(url)
    project = stocks_project("ui-project", files=12, seed=3)
    run = [CHUTE, "run", "-p", str(project), "--db", url, "--json"]
    sh(run)
    print(f"{show(run)}: the table and the ledger's schema")
    t0 = time.perf_counter()
    psql(url, SEED_SQL.format(runs=args.runs, files=args.files))
    counts = psql(url, "SELECT (SELECT count(*) FROM chute.runs) || ' runs, ' || (SELECT count(*) FROM chute.files)"
                       " || ' files, ' || (SELECT count(*) FROM chute.rejects) || ' rejects, '"
                       " || (SELECT count(*) FROM chute.dead_letters) || ' dead letters'")
    print(f"seeded {counts} in {time.perf_counter() - t0:.1f} s ({hide(url)})")

    from fastapi.testclient import TestClient

    from chute.config.project import load_project
    from chute.ui.app import create_app

    last_run = psql(url, "SELECT max(run_id) FROM chute.runs")
    last_file = psql(url, "SELECT max(file_id) FROM chute.files")
    rows, slow = [], []
    with TestClient(create_app(load_project(project), url), base_url="http://127.0.0.1") as client:
        for page in PAGES:
            path = page.format(last_run=last_run, last_file=last_file)
            assert client.get(path).status_code == 200, path  # warm-up (templates, connection pool)
            times = []
            with recording() as seen:
                for _ in range(args.requests):
                    t = time.perf_counter()
                    response = client.get(path)
                    times.append(time.perf_counter() - t)
                    assert response.status_code == 200, path
            per_request = len(seen) // args.requests
            page_ms = median(times) * 1000
            if per_request:
                k = max(range(per_request), key=lambda j: seen[j][0])  # the slowest statement of a request
                statement = literal(url, seen[k][1], seen[k][2])
                in_app = median([seen[r * per_request + k][0] for r in range(args.requests)]) * 1000
                alone = psql_ms(url, statement)
                shown = " ".join(statement.split())[:70]
            else:
                alone = in_app = None
                shown = "(no SQL)"
            rows.append([path, round(page_ms, 1), per_request, round(in_app, 1) if in_app is not None else "-",
                         round(alone, 1) if alone is not None else "-", "yes" if page_ms < TARGET_MS else "NO", shown])
            if page_ms >= TARGET_MS:
                slow.append(path)
    table(["page", "page ms", "queries", "main query in app ms", "alone in psql ms", f"< {TARGET_MS} ms",
           "main query"], rows)
    print(f"every page under {TARGET_MS} ms" if not slow else f"over {TARGET_MS} ms: {', '.join(slow)}")
    if not args.keep_data:
        psql(url.rsplit("/", 1)[0] + "/postgres", 'DROP DATABASE IF EXISTS "bench_ui" WITH (FORCE)')


if __name__ == "__main__":
    main()

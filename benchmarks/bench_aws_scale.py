"""bench_aws_scale: seed 002's full batch through the generated AWS stack (issue 22).

    chute init DIR --example stocks --files 7192 --seed 1     (7,192 files, 1,000 companies kept)
    chute run -p DIR --db LOCAL --json                        (rows_local: the same files, locally)
    then, on moto's server (Step Functions executing the real generated definition, the real
    handlers run in this process, the embedded PostgreSQL):
      the first 100 files + .SUCCESS under small/  -> parent_events_100
      all files + .SUCCESS under 2024-05-01/       -> status, rows, ledger counts, payload, events, wall time

wall_s runs from the marker's put to the execution's end (the marker's event, the only one the
template's rule passes in marker mode, reaches the trigger, which lists the folder, writes the
manifest and starts the execution).
max_payload_bytes is the largest state input, output or task parameters of the parent's history
and of every handler invocation (moto cannot list a Distributed Map's child executions).

    .venv/bin/python benchmarks/bench_aws_scale.py [--files 7192] [--seed 1] [--small 100] [--json]

Exit status 1 unless: SUCCEEDED, rows_loaded == rows_local, max_payload_bytes < 262,144,
parent_events < 25,000 and |parent_events - parent_events_100| <= 10.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from _common import CHUTE, ROOT, chute_json, cluster, count, fresh_database, psql, sh, stocks_project

sys.path.insert(0, str(ROOT / "tests"))  # the moto stack the tests build (tests/fixtures_deploy_aws.py)

TABLE = "historical_stocks_data"


def moto() -> str:
    from moto.server import ThreadedMotoServer

    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(MOTO_PORT=str(port), AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/config", method="POST", data=json.dumps(
        {"stepfunctions": {"execute_state_machine": True}}).encode())).read()
    from moto.awslambda.models import LambdaFunction
    from fixtures_deploy_aws import _run_handler

    LambdaFunction._invoke_lambda = lambda self, event=None: _run_handler(self, event)
    return url


def batch(project: Path, db_url: str, folder: str, paths: list[Path], moto_url: str) -> tuple[dict, float]:
    from fixtures_deploy_aws import create_stack, run_marker
    from chute.config.project import load_project
    from chute.deploy.aws.model import build_model

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    stack = create_stack(build_model(load_project(project)), project, db_url, markers_only=True)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: stack["s3"].put_object(Bucket="landing", Key=f"{folder}/{p.name}",
                                                       Body=p.read_bytes()), paths))
    t0 = time.perf_counter()
    stack["s3"].put_object(Bucket="landing", Key=f"{folder}/.SUCCESS", Body=b"")
    done = run_marker(stack, timeout=7200)
    return done, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=7192)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    project = stocks_project(f"aws-stocks-{args.files}-{args.seed}", args.files, args.seed)
    paths = sorted((project / "landing").glob("*.txt"))
    url = cluster()
    local = fresh_database(url, "aws_local")
    t0 = time.perf_counter()
    chute_json(sh([CHUTE, "run", "-p", str(project), "--db", local, "--json"], check=False))
    local_s = time.perf_counter() - t0
    rows_local = count(local, TABLE)

    moto_url = moto()
    from fixtures_deploy_aws import LARGEST_PAYLOAD

    small, _ = batch(project, fresh_database(url, "aws_small"), "small", paths[:args.small], moto_url)
    full_db = fresh_database(url, "aws_full")
    LARGEST_PAYLOAD[0] = 0
    full, wall = batch(project, full_db, "2024-05-01", paths, moto_url)
    statuses = dict(line.split("|") for line in psql(
        full_db, "select status, count(*) from chute.files group by status").split() if "|" in line)
    output = json.loads(full["execution"].get("output") or "{}")
    result = {
        "status": full["execution"]["status"],
        "rows_loaded": count(full_db, TABLE),
        "rows_local": rows_local,
        "files": len(paths),
        "files_loaded": int(statuses.get("loaded", 0)) + int(statuses.get("loaded_with_rejects", 0)),
        "files_excluded": (output.get("summary") or {}).get("excluded"),
        "files_failed": int(statuses.get("failed", 0)),
        "files_skipped": int(statuses.get("skipped", 0)),
        "max_payload_bytes": max(full["max_payload"], small["max_payload"], LARGEST_PAYLOAD[0]),
        "parent_events": full["events"],
        "parent_events_100": small["events"],
        "wall_s": round(wall, 1),
        "local_run_s": round(local_s, 1),
    }
    ok = (result["status"] == "SUCCEEDED" and result["rows_loaded"] == rows_local
          and result["max_payload_bytes"] < 262_144 and result["parent_events"] < 25_000
          and abs(result["parent_events"] - result["parent_events_100"]) <= 10)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for k, v in result.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}")
        print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

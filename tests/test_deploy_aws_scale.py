"""The generated stack at a batch size where the old design broke (issue 22), on moto's server,
the real generated definition, the real handlers (in process) and the real PostgreSQL.

A few hundred generated stocks files in one marker batch: the execution succeeds, the rows equal
a local `chute run` of the same files, no state payload comes near Step Functions' 256 KiB, and
the parent execution's history is the same size for a small batch and a larger one (the files
are in the children, whose histories are their own). benchmarks/bench_aws_scale.py runs the same
at seed 002's full size (7,192 files)."""

from __future__ import annotations

import pytest

from fixtures_deploy_aws import LARGEST_PAYLOAD, create_stack, put_batch, run_marker

boto3 = pytest.importorskip("boto3")

from chute.config.project import load_project  # noqa: E402
from chute.deploy.aws.model import build_model  # noqa: E402
from chute.examples.scaffold import create_project  # noqa: E402

FILES = 300
SMALL = 20
PAYLOAD_LIMIT = 262_144  # Step Functions: 256 KiB per state input or output
HISTORY_LIMIT = 25_000  # events per execution


@pytest.fixture
def big_stocks(tmp_path):
    folder = tmp_path / "stocks"
    create_project(folder, "stocks", files=FILES, seed=11)
    with (folder / "chute.toml").open("a") as f:  # about 60 children for the kept files
        f.write("\n[aws]\nfiles_per_child = 5\nmap_concurrency = 8\nload_concurrency = 4\n")
    return folder


@pytest.fixture
def local_db(pg_cluster):
    import uuid

    import psycopg

    name = f"t_local_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_cluster.url(name)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_few_hundred_files_load_like_chute_run_with_flat_payload_and_history(
        big_stocks, db_url, local_db, query, cli, lambdas_in_process, monkeypatch):
    import psycopg

    from chute.deploy.aws import staging

    monkeypatch.setattr(staging.S3Upload.__init__, "__defaults__", (5 << 20,))  # S3's smallest part: multipart here
    result = cli("run", "--project", big_stocks, "--db", local_db, "--json")
    assert result.exit_code == 0
    with psycopg.connect(local_db) as conn:
        rows_local = conn.execute("select count(*) from historical_stocks_data").fetchone()[0]
    assert rows_local > 0

    for name in ("CHUTE_PROJECT_DIR", "CHUTE_STAGING_BUCKET", "CHUTE_STAGING_PREFIX", "CHUTE_LANDING_PREFIX",
                 "CHUTE_DB_SECRET_ARN", "CHUTE_TOPIC_ARN", "CHUTE_FAILED_RUNS_QUEUE_URL", "CHUTE_WAIT_FOR_MARKER",
                 "CHUTE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    stack = create_stack(build_model(load_project(big_stocks)), big_stocks, db_url, markers_only=True)
    for name, value in stack["env"].items():
        monkeypatch.setenv(name, value)
    landing = sorted((big_stocks / "landing").iterdir())
    assert len(landing) == FILES

    # A small batch first, then every file (the small batch's files come again under other names).
    LARGEST_PAYLOAD[0] = 0
    put_batch(stack, "small", landing[:SMALL])
    small = run_marker(stack)
    assert small["execution"]["status"] == "SUCCEEDED", small
    put_batch(stack, "all", landing)
    full = run_marker(stack)
    assert full["execution"]["status"] == "SUCCEEDED", full

    assert query("select count(*) from historical_stocks_data")[0][0] == rows_local
    statuses = dict(query("select status, count(*) from chute.files group by status"))
    with psycopg.connect(local_db) as conn:
        loaded_local = conn.execute("select count(*) from chute.files where status = 'loaded'").fetchone()[0]
    assert statuses.get("loaded", 0) == loaded_local and "failed" not in statuses
    small_kept = statuses.get("skipped", 0)  # the small batch's kept files, seen again under all/
    assert 0 < small_kept <= SMALL

    # [tables.*] export: the same file as `chute run`'s, byte for byte, in the staging bucket.
    local_export = (big_stocks / "processed" / "historical_stock_data.csv").read_bytes()
    exported = stack["s3"].get_object(Bucket="staging", Key="exports/processed/historical_stock_data.csv")
    assert exported["Body"].read() == local_export

    assert max(small["max_payload"], full["max_payload"], LARGEST_PAYLOAD[0]) < PAYLOAD_LIMIT
    assert full["max_payload"] < 4096  # the parent holds coordinates and counts only
    assert full["events"] < HISTORY_LIMIT
    assert abs(full["events"] - small["events"]) <= 10, (small["events"], full["events"])

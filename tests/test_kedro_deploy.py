"""A Kedro project through `chute deploy aws`: the state machine runs the Kedro graph (each child
of its Distributed Map runs the nodes in the graph's order, named in the Process step; one Task
per node would cost ~12 history events a file: see docs/deploy-aws.md), the image holds what the
project needs, and the execution on moto's server (chute's handlers in process, run from the
rendered image folder) loads exactly the rows that `chute run` loads here."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from fixtures_deploy_aws import create_stack, finished, put_batch, run_marker, sqs_event
from fixtures_kedro import expected

boto3 = pytest.importorskip("boto3")

from chute.config.project import load_project  # noqa: E402
from chute.deploy.aws import handlers  # noqa: E402
from chute.deploy.aws.model import build_model  # noqa: E402

DAILY = "SELECT ticker, price_date, open_value, close_value, volume, change, sector FROM daily_prices"
SUMMARY = "SELECT ticker, days, total_volume, best_change FROM ticker_summary"


@pytest.fixture
def rendered(kedro_project, cli):
    out = kedro_project / "infra"
    cli("deploy", "aws", "--project", kedro_project, "--out", out)
    return out


def test_the_state_machine_is_the_kedro_graph(rendered):
    machine = json.loads((rendered / "statemachine.asl.json").read_text())
    process = machine["States"]["Files"]["ItemProcessor"]["States"]["Process"]
    assert process["Comment"].endswith("clean_prices -> with_sectors -> ticker_summary")


def test_the_image_holds_the_kedro_project_and_kedro(rendered):
    project = rendered / "project"
    for path in ("chute.toml", "pyproject.toml", "src/kedro_demo/pipeline_registry.py",
                 "src/kedro_demo/pipelines/prices/nodes.py", "conf/base/catalog.yml", "conf/base/parameters.yml",
                 "data/01_raw/sectors.csv"):
        assert (project / path).is_file(), path
    assert not (project / "conf" / "local").exists()  # Kedro's place for credentials
    assert not (project / "landing").exists()
    import kedro

    assert f"kedro=={kedro.__version__}" in (rendered / "requirements.txt").read_text().splitlines()


@pytest.fixture
def local_rows(kedro_project, pg_cluster, cli, monkeypatch):
    """What `chute run` loads here, in a database of its own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        cli("run", "-p", kedro_project, "--db", pg_cluster.url(name))
        with psycopg.connect(pg_cluster.url(name)) as conn:
            yield sorted(conn.execute(DAILY).fetchall()), sorted(conn.execute(SUMMARY).fetchall())
    finally:
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_kedro_pipeline_on_step_functions_loads_what_chute_run_loads(
        kedro_project, rendered, local_rows, db_url, query, lambdas_in_process, monkeypatch):
    image_project = rendered / "project"  # the handlers run the project as the image holds it
    stack = create_stack(build_model(load_project(image_project)), image_project, db_url, prefix="kedro-demo")
    landing = sorted((kedro_project / "landing").glob("*.csv"))
    put_batch(stack, "2024-03", landing)
    done = run_marker(stack)["execution"]
    assert done["status"] == "SUCCEEDED", done

    daily, tickers = expected(kedro_project)
    on_aws = sorted(query(DAILY)), sorted(query(SUMMARY))
    assert on_aws == (daily, tickers)  # exact
    assert on_aws == local_rows  # and the same as `chute run` here
    assert query("SELECT name, status FROM chute.files ORDER BY name") == [
        (f"2024-03/{p.name}", "loaded") for p in landing]

    again = handlers.trigger(sqs_event([{"MessageId": "again", "Body": json.dumps({"Records": [{
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "landing"},
                                                 "object": {"key": "2024-03/.SUCCESS", "eTag": "x"}}}]})}]))
    assert not again["batchItemFailures"]
    for e in stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]:
        assert finished(stack["sfn"], e["executionArn"])["status"] == "SUCCEEDED"
    assert (sorted(query(DAILY)), sorted(query(SUMMARY))) == (daily, tickers)  # exactly once

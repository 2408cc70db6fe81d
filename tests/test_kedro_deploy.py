"""A Kedro project through `chute deploy aws`: the state machine is generated from the Kedro
graph (one Task per node, as a hand-written parse_pipeline.py would), the image holds what the
project needs, and the execution on moto's server (chute's handlers in process, run from the
rendered image folder) loads exactly the rows that `chute run` loads here."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest

from fixtures_deploy_aws import db_secret, drain, lambda_role, placeholder_zip, sqs_event
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
    per_file = machine["States"]["Files"]["ItemProcessor"]["States"]
    tasks = [(name, state["Parameters"].get("node")) for name, state in per_file.items()]
    assert tasks == [("Read", None), ("Level0", "clean_prices"), ("Level1", "with_sectors"),
                     ("Level2", "ticker_summary")]
    assert per_file["Read"]["Next"] == "Level0" and per_file["Level2"]["End"] is True


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


def _finished(sfn, arn: str) -> dict:
    for _ in range(600):  # bounded: at most ~2 minutes
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.2)
    raise AssertionError(f"execution {arn} still running")


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
    model = build_model(load_project(image_project))
    s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
    iam, lam, sfn, secrets = (boto3.client(n) for n in ("iam", "lambda", "stepfunctions", "secretsmanager"))
    s3.create_bucket(Bucket="landing")
    s3.create_bucket(Bucket="staging")
    events = sqs.create_queue(QueueName="events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": events_arn, "Events": ["s3:ObjectCreated:*"]}]})
    env = {"CHUTE_PROJECT_DIR": str(image_project), "CHUTE_STAGING_BUCKET": "staging",
           "CHUTE_STAGING_PREFIX": "staging/", "CHUTE_LANDING_PREFIX": "", "CHUTE_DB_SECRET_ARN": db_secret(secrets, db_url),
           "CHUTE_TOPIC_ARN": sns.create_topic(Name="alerts")["TopicArn"],
           "CHUTE_FAILED_RUNS_QUEUE_URL": sqs.create_queue(QueueName="failed-runs")["QueueUrl"],
           "CHUTE_WAIT_FOR_MARKER": "yes"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    role = lambda_role(iam)
    arns = {f.key: lam.create_function(FunctionName=f"kedro-demo-{f.key}", Runtime="python3.12", Role=role,
                                       Handler=f.command, Code={"ZipFile": placeholder_zip()},
                                       Timeout=f.timeout_s, MemorySize=f.memory_mb,
                                       Environment={"Variables": env})["FunctionArn"]
            for f in model.functions}
    machine = sfn.create_state_machine(name="kedro-demo", definition=json.dumps(model.definition(arns)),
                                       roleArn=role)["stateMachineArn"]
    monkeypatch.setenv("CHUTE_STATE_MACHINE_ARN", machine)
    for cached in (handlers._project, handlers._plan, handlers._static):
        cached.cache_clear()

    landing = sorted((kedro_project / "landing").glob("*.csv"))
    for path in landing:
        s3.put_object(Bucket="landing", Key=f"2024-03/{path.name}", Body=path.read_bytes())
    s3.put_object(Bucket="landing", Key="2024-03/.SUCCESS", Body=b"")
    report = handlers.trigger(sqs_event(drain(sqs, events)))
    assert len(report["started"]) == 1
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]
    done = _finished(sfn, execution["executionArn"])
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
    assert again["duplicates"] or again["started"]
    for e in sfn.list_executions(stateMachineArn=machine)["executions"]:
        assert _finished(sfn, e["executionArn"])["status"] == "SUCCEEDED"
    assert (sorted(query(DAILY)), sorted(query(SUMMARY))) == (daily, tickers)  # exactly once

"""Schedules on AWS (issue 22): every scheduled extraction renders an EventBridge Scheduler
schedule -> the extract function -> the landing bucket -> .SUCCESS markers -> the load path.

moto stores schedules but never fires them, so the test does what Scheduler does with the
target it stores: invoke the target's function with the target's input (the scheduled time
substituted). The rest is the stack as rendered: the extract function with its template
environment, the markers' events, the trigger, the real state machine, the real PostgreSQL."""

from __future__ import annotations

import importlib.util
import json

import psycopg
import pytest
import yaml

from fixtures_deploy_aws import create_stack, drain, finished, sqs_event, template_of

boto3 = pytest.importorskip("boto3")

from chute.config.project import load_project  # noqa: E402
from chute.deploy.aws import handlers  # noqa: E402
from chute.deploy.aws.model import build_model  # noqa: E402
from chute.deploy.aws.names import aws_cron  # noqa: E402
from chute.errors import ConfigError  # noqa: E402
from chute.examples.scaffold import create_project  # noqa: E402


@pytest.mark.parametrize("cron, aws", [
    ("0 3 1 * *", "cron(0 3 1 * ? *)"),        # monthly: a day of the month, so the weekday is ?
    ("0 * * * *", "cron(0 * * * ? *)"),        # hourly
    ("*/15 8-18 * * 1-5", "cron(*/15 8-18 ? * MON-FRI *)"),  # croniter's 1-5 is Monday-Friday
    ("30 6 * * 0,6", "cron(30 6 ? * SUN,SAT *)"),
    ("0 0 * * 7", "cron(0 0 ? * SUN *)"),      # 7 is Sunday too
    ("0 12 * * * 0", "cron(0 12 * * ? *)"),    # a 6th field of 0 seconds
])
def test_cron_expressions_become_aws_schedule_expressions(cron, aws):
    assert aws_cron(cron) == aws


def test_what_aws_cannot_schedule_is_refused():
    with pytest.raises(ConfigError, match="minute granularity"):
        aws_cron("0 * * * * 30")
    with pytest.raises(ConfigError, match="cannot combine"):
        aws_cron("0 0 1 * MON")


@pytest.fixture
def ingest(tmp_path, source_pg):
    folder = tmp_path / "ingest"
    create_project(folder, "ingest", files=0)
    name = psycopg.conninfo.conninfo_to_dict(source_pg)["dbname"]
    toml = folder / "chute.toml"
    toml.write_text(toml.read_text().replace("warehouse:ingest_source", f"warehouse:{name}"))
    spec = importlib.util.spec_from_file_location("ingest_generate", folder / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.generate(folder, files=2, seed=3, url=source_pg)
    return folder


def test_the_ingest_extractions_are_scheduled_monthly_in_sam_and_terraform(ingest, cli):
    out = ingest / "infra"
    cli("deploy", "aws", "--project", ingest, "--out", out)
    r = yaml.safe_load((out / "template.yaml").read_text())["Resources"]
    schedules = {k: v["Properties"] for k, v in r.items() if v["Type"] == "AWS::Scheduler::Schedule"}
    assert set(schedules) == {"ExtractOrdersSchedule", "ExtractProductsSchedule", "SweepLateFilesSchedule"}
    orders = schedules["ExtractOrdersSchedule"]
    assert orders["ScheduleExpression"] == "cron(0 3 1 * ? *)" and orders["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert orders["Target"]["Arn"] == {"Fn::GetAtt": ["ExtractFunction", "Arn"]}
    assert json.loads(orders["Target"]["Input"])["extract"] == ["orders"]
    assert r["ExtractFunction"]["Properties"]["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["FunctionsDLQ", "Arn"]}
    main = (out / "terraform" / "modules" / "chute" / "main.tf").read_text()
    assert 'resource "aws_scheduler_schedule" "extractorders"' in main
    assert 'schedule_expression          = "cron(0 3 1 * ? *)"' in main


def test_a_scheduled_extraction_fires_through_its_rendered_target_and_loads(
        ingest, source_pg, db_url, query, lambdas_in_process, monkeypatch):
    for name in ("CHUTE_PROJECT_DIR", "CHUTE_STAGING_BUCKET", "CHUTE_STAGING_PREFIX", "CHUTE_LANDING_PREFIX",
                 "CHUTE_DB_SECRET_ARN", "CHUTE_TOPIC_ARN", "CHUTE_FAILED_RUNS_QUEUE_URL", "CHUTE_WAIT_FOR_MARKER",
                 "CHUTE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    model = build_model(load_project(ingest))
    stack = create_stack(model, ingest, db_url, prefix="ingest")
    for name, value in stack["env"].items():
        monkeypatch.setenv(name, value)
    resources = template_of(model)["Resources"]
    props = resources["ExtractOrdersSchedule"]["Properties"]
    lam, scheduler, iam = boto3.client("lambda"), boto3.client("scheduler"), boto3.client("iam")
    role = iam.get_role(RoleName="chute")["Role"]["Arn"]
    target = {**props["Target"], "Arn": lam.get_function(FunctionName="ingest-extract")["Configuration"]["FunctionArn"],
              "RoleArn": role, "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:123456789012:functions-dlq"}}
    scheduler.create_schedule(Name="ingest-extract-orders", ScheduleExpression=props["ScheduleExpression"],
                              ScheduleExpressionTimezone=props["ScheduleExpressionTimezone"],
                              FlexibleTimeWindow=props["FlexibleTimeWindow"], Target=target)

    # Fire it as Scheduler would: its target, its input with the context attribute filled in.
    stored = scheduler.get_schedule(Name="ingest-extract-orders")["Target"]
    payload = stored["Input"].replace("<aws.scheduler.scheduled-time>", "2026-12-01T03:00:00Z")
    fired = lam.invoke(FunctionName=stored["Arn"], InvocationType="RequestResponse", Payload=payload.encode())
    result = json.loads(fired["Payload"].read())
    assert "FunctionError" not in fired, result
    assert result["fire"] == "2026-12-01T03:00:00Z" and [e["name"] for e in result["extracted"]] == ["orders"]
    (marker_folder,) = result["markers"]
    assert marker_folder.startswith("orders/year=")

    # The marker's event -> the trigger -> the execution -> the warehouse.
    report = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))
    (name,) = report["started"]
    arn = stack["machine"].replace(":stateMachine:", ":execution:") + ":" + name
    assert finished(stack["sfn"], arn, 120)["status"] == "SUCCEEDED"
    with psycopg.connect(source_pg) as conn:
        source = conn.execute("select count(*) from orders").fetchone()[0]
    assert source > 0 and query("select count(*) from orders")[0][0] == source
    assert query("select count(*) from chute.files where status = 'loaded'")[0][0] == result["extracted"][0]["files"]

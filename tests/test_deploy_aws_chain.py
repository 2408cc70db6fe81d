"""Chained stages on AWS (docs/deploy-aws.md, "Chained stages on AWS").

Rendered: a project with [follow] gets a stage queue with its dead-letter queue, a stage
function fed by it and swept by a schedule, and alarms; other projects get none of these.

End to end on moto's server and the real test PostgreSQL: the upstream's generated state
machine loads a file (its handlers in process); its load commits the chute.queue messages in
the load's transaction; its notify step publishes a wake-up on the upstream's chain topic,
which reaches the follower's stage queue through an SNS subscription built from the
upstream's name; the stage handler, given that SQS event, consumes exactly once; a failing
stage leaves the upstream untouched and its message becomes a dead letter that
`chute dlq retry` replays.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from fixtures_chain import follower, upstream, write_projects
from fixtures_deploy_aws import db_secret, drain, lambda_role, placeholder_zip, sqs_event

boto3 = pytest.importorskip("boto3")

from chute.ledger import schema
from chute.deploy.aws import handlers  # noqa: E402
from chute.deploy.aws.model import build_model  # noqa: E402
from chute.config.project import load_project  # noqa: E402

SHOPS = [{"shop_id": 1, "name": "shop 1"}, {"shop_id": 2, "name": "shop 2"}]
ORDERS = {1: [{"order_id": 10, "total": 1.5}, {"order_id": 11, "total": 2.5}], 2: [{"order_id": 20, "total": 3.0}]}


def _projects(tmp_path: Path, url: str) -> tuple[Path, Path]:
    return write_projects(tmp_path, upstream(), follower(
        url, follow="max_attempts = 2", watch="retry_initial = 0.01\nretry_max = 0.01",
        extract="attempts = 2\nretry_initial = 0.01"))


# -- rendered ------------------------------------------------------------------------------------
def _resources(out: Path) -> dict:
    return yaml.safe_load((out / "template.yaml").read_text())["Resources"]


def test_only_a_follower_gets_a_stage_queue_dlq_function_and_alarms(tmp_path, cli):
    up, down = _projects(tmp_path, "http://127.0.0.1:9")
    cli("deploy", "aws", "--project", up, "--out", up / "infra")
    cli("deploy", "aws", "--project", down, "--out", down / "infra")
    upstream, follower = _resources(up / "infra"), _resources(down / "infra")

    for r in (upstream, follower):  # every stack can be followed: its chain topic, named from its project
        assert r["ChainTopic"]["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in r["ChainTopic"]["Properties"]
    assert upstream["ChainTopic"]["Properties"]["TopicName"] == {"Fn::Sub": "chute-shops-${Environment}-chain"}
    stage_only = {"StageQueue", "StageDLQ", "StageFunction", "StageQueuePolicy", "UpstreamSubscription",
                  "StageQueueAgeAlarm", "StageDlqDepthAlarm", "StageErrorsAlarm"}
    assert not stage_only & set(upstream)
    assert stage_only <= set(follower)

    queue = follower["StageQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["StageDLQ", "Arn"]},
                                      "maxReceiveCount": 2}  # [follow] max_attempts
    assert "KmsMasterKeyId" in queue and "KmsMasterKeyId" in follower["StageDLQ"]["Properties"]
    upstream_topic = {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:"
                                 "chute-shops-${Environment}-chain"}
    subscription = follower["UpstreamSubscription"]["Properties"]
    assert subscription == {"TopicArn": upstream_topic, "Protocol": "sqs", "RawMessageDelivery": True,
                            "Endpoint": {"Fn::GetAtt": ["StageQueue", "Arn"]}}
    allowed = follower["StageQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert allowed["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": upstream_topic}}

    function = follower["StageFunction"]["Properties"]
    assert function["ImageConfig"]["Command"] == ["chute.deploy.aws.handlers.stage"]
    assert "VpcConfig" in function  # it reads chute.queue and loads the database
    events = function["Events"]
    # Bounded by the stage's reserved concurrency (2), failed messages reported one by one (issue 22).
    assert events["Wakeups"] == {"Type": "SQS", "Properties": {
        "Queue": {"Fn::GetAtt": ["StageQueue", "Arn"]}, "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"], "ScalingConfig": {"MaximumConcurrency": 2}}}
    assert function["ReservedConcurrentExecutions"] == 2
    assert events["Sweep"]["Type"] == "Schedule" and events["Sweep"]["Properties"]["Schedule"].startswith("rate(")
    alarms = {k: v["Properties"] for k, v in follower.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms["StageQueueAgeAlarm"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarms["StageDlqDepthAlarm"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StageDLQ", "QueueName"]}
    assert alarms["StageErrorsAlarm"]["Dimensions"][0]["Value"] == {"Ref": "StageFunction"}

    # The notify function may publish to its own chain topic, and to nothing else new.
    notify = upstream["NotifyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Effect": "Allow", "Action": ["sns:Publish"],
            "Resource": [{"Ref": "AlertTopic"}, {"Ref": "ChainTopic"}]} in notify

    tf_up = (up / "infra" / "terraform" / "modules" / "chute" / "main.tf").read_text()
    tf_down = (down / "infra" / "terraform" / "modules" / "chute" / "main.tf").read_text()
    for block in ('resource "aws_sqs_queue" "stage_queue"', 'resource "aws_sqs_queue" "stage_dlq"',
                  'resource "aws_lambda_function" "stage"', 'resource "aws_lambda_event_source_mapping" "stage"',
                  'resource "aws_sns_topic_subscription" "upstream"', 'resource "aws_cloudwatch_event_rule" "sweep"',
                  'resource "aws_cloudwatch_metric_alarm" "stage_queue_age"',
                  'resource "aws_cloudwatch_metric_alarm" "stage_dlq_depth"'):
        assert block in tf_down and block not in tf_up, block
    assert "deadLetterTargetArn = aws_sqs_queue.stage_dlq.arn, maxReceiveCount = 2" in tf_down
    assert 'resource "aws_sns_topic" "chain"' in tf_up and "chute-shops-${var.environment}-chain" in tf_up


def test_check_passes_for_a_follower(tmp_path, cli):
    """cfn-lint, sam validate, terraform fmt (or python-hcl2) and checkov on a follower's stack: ~20 s."""
    _, down = _projects(tmp_path, "http://127.0.0.1:9")
    result = cli("deploy", "aws", "--project", down, "--out", down / "infra", "--check", "--json", expect=None)
    by_tool = {c["tool"]: c for c in json.loads(result.output)["checks"]}
    assert result.exit_code == 0, by_tool
    for tool in ("cfn-lint", "sam validate", "checkov (cloudformation)", "checkov (terraform)", "hcl2 parse"):
        assert by_tool[tool]["status"] == "passed", by_tool[tool]


# -- end to end on moto --------------------------------------------------------------------------
def _arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture
def chain(tmp_path, api_server, db_url, lambdas_in_process, monkeypatch):
    """The upstream's stack (buckets, queues, chain topic, functions, state machine) and the
    follower's (landing bucket, stage queue + DLQ subscribed to the upstream's topic), created
    in moto from the models, upstream first (the deploy order docs/deploy-aws.md gives)."""
    broken: set[int] = set()
    api_server.route("/shops", lambda q, h: (200, {}, SHOPS))
    for shop in ORDERS:
        api_server.route(f"/shops/{shop}/orders", lambda q, h, shop=shop:
                         (500, {}, {"error": "down"}) if shop in broken else (200, {}, ORDERS[shop]))
    up, down = _projects(tmp_path, api_server.url)
    upstream, follower = build_model(load_project(up)), build_model(load_project(down))
    s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
    iam, lam, sfn, secrets = (boto3.client(n) for n in ("iam", "lambda", "stepfunctions", "secretsmanager"))
    account = boto3.client("sts").get_caller_identity()["Account"]

    secret = db_secret(secrets, db_url)
    role = lambda_role(iam)

    # The upstream's stack.
    for bucket in ("shops-landing", "shops-staging", "orders-landing"):
        s3.create_bucket(Bucket=bucket)
    events = sqs.create_queue(QueueName="shops-events")["QueueUrl"]
    s3.put_bucket_notification_configuration(Bucket="shops-landing", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": _arn(sqs, events), "Events": ["s3:ObjectCreated:*"]}]})
    chain_topic = sns.create_topic(Name=upstream.chain_topic_name("dev"))["TopicArn"]
    env = {"CHUTE_PROJECT_DIR": str(up), "CHUTE_STAGING_BUCKET": "shops-staging", "CHUTE_STAGING_PREFIX": "staging/",
           "CHUTE_LANDING_PREFIX": "", "CHUTE_DB_SECRET_ARN": secret, "CHUTE_WAIT_FOR_MARKER": "yes",
           "CHUTE_TOPIC_ARN": sns.create_topic(Name="shops-alerts")["TopicArn"],
           "CHUTE_FAILED_RUNS_QUEUE_URL": sqs.create_queue(QueueName="shops-failed-runs")["QueueUrl"],
           "CHUTE_CHAIN_TOPIC_ARN": chain_topic}
    arns = {"staging_bucket": "shops-staging"}
    arns |= {f.key: lam.create_function(FunctionName=f"shops-{f.key}", Runtime="python3.12", Role=role,
                                       Handler=f.command, Code={"ZipFile": placeholder_zip()},
                                       Environment={"Variables": env})["FunctionArn"]
            for f in upstream.functions}
    machine = sfn.create_state_machine(name="shops-pipeline", definition=json.dumps(upstream.definition(arns)),
                                       roleArn=role)["stateMachineArn"]
    for name, value in {**env, "CHUTE_STATE_MACHINE_ARN": machine}.items():
        monkeypatch.setenv(name, value)

    # The follower's stack: its stage queue, redriven to its DLQ, subscribed to the upstream's
    # chain topic by an ARN built from the upstream's name, the region and the account.
    dlq = sqs.create_queue(QueueName="orders-stage-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="orders-stage", Attributes={"RedrivePolicy": json.dumps({
        "deadLetterTargetArn": _arn(sqs, dlq),
        "maxReceiveCount": follower.queue("stage_queue").max_receive_count})})["QueueUrl"]
    built = f"arn:aws:sns:{boto3.session.Session().region_name}:{account}:{follower.upstream_topic_name('dev')}"
    assert built == chain_topic
    sns.subscribe(TopicArn=built, Protocol="sqs", Endpoint=_arn(sqs, queue), Attributes={"RawMessageDelivery": "true"})
    assert {f.key for f in follower.functions} == {f.key for f in upstream.functions} | {"stage"}
    # The follower is an upstream in turn (a third stage may follow it): its own chain topic, and
    # the queue of a stage that follows it.
    own_topic = sns.create_topic(Name=follower.chain_topic_name("dev"))["TopicArn"]
    next_queue = sqs.create_queue(QueueName="lines-stage")["QueueUrl"]
    sns.subscribe(TopicArn=own_topic, Protocol="sqs", Endpoint=_arn(sqs, next_queue),
                  Attributes={"RawMessageDelivery": "true"})

    def stage(event: dict) -> dict:
        """The follower's stage function, with its stack's environment."""
        for name, value in {"CHUTE_PROJECT_DIR": str(down), "CHUTE_LANDING_BUCKET": "orders-landing",
                            "CHUTE_DB_SECRET_ARN": secret, "CHUTE_CHAIN_TOPIC_ARN": own_topic}.items():
            monkeypatch.setenv(name, value)
        return handlers.stage(event)

    def upstream_load(day: str) -> dict:
        """shops.jsonl + .SUCCESS into the upstream's landing bucket; its execution to the end."""
        for name, value in {**env, "CHUTE_STATE_MACHINE_ARN": machine}.items():
            monkeypatch.setenv(name, value)
        body = "".join(json.dumps(s) + "\n" for s in SHOPS).encode()
        s3.put_object(Bucket="shops-landing", Key=f"{day}/shops.jsonl", Body=body)
        s3.put_object(Bucket="shops-landing", Key=f"{day}/.SUCCESS", Body=b"")
        started = handlers.trigger(sqs_event(drain(sqs, events)))["started"]
        assert len(started) == 1
        arn = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
        for _ in range(600):  # bounded: at most ~2 minutes
            done = sfn.describe_execution(executionArn=arn)
            if done["status"] != "RUNNING":
                return done
            time.sleep(0.2)
        raise AssertionError("the upstream's execution is still running")

    for cached in (handlers._project, handlers._plan, handlers._static):
        cached.cache_clear()
    return {"sqs": sqs, "queue": queue, "dlq": dlq, "stage": stage, "upstream_load": upstream_load,
            "broken": broken, "down": down, "next_queue": next_queue}


def _orders(query) -> list[tuple]:
    return query("SELECT order_id, shop_id, total FROM orders ORDER BY 1")


EXPECTED = sorted((o["order_id"], s, o["total"]) for s in ORDERS for o in ORDERS[s])


def _subscribe(db_url: str, stage: str, **follow) -> None:
    """What the first run of a stage does: subscribe it (chain.queue.subscribe)."""
    import psycopg

    from chute.ledger import queue
    from chute.config.follow import Follow

    with psycopg.connect(db_url, autocommit=True) as conn:
        schema.ensure_schema(conn)
        queue.subscribe(conn, stage, Follow(**follow))


def test_upstream_load_publishes_wakes_the_stage_which_loads_exactly_once(chain, query, db_url):
    sweep = chain["stage"]({"sweep": True})  # the sweeper's first run subscribes the stage
    assert sweep["status"] == "succeeded" and sweep["chain"]["claimed"] == 0
    assert query("SELECT stage, upstream FROM chute.subscriptions") == [("orders", "shops")]

    done = chain["upstream_load"]("2024-05-01")
    assert done["status"] == "SUCCEEDED", done
    # The messages were written by the load's own transaction: its run, one per shop.
    (run_id,) = query("SELECT run_id FROM chute.runs WHERE pipeline = 'shops'")[0]
    sent = query("SELECT upstream_run, payload FROM chute.queue WHERE stage = 'orders' ORDER BY message_id")
    assert sent == [(run_id, {"keys": [{"shop_id": 1}]}), (run_id, {"keys": [{"shop_id": 2}]})]
    assert json.loads(done["output"])["summary"]["chain"] == {"published": 2}

    wakeups = drain(chain["sqs"], chain["queue"])  # notify -> chain topic -> the follower's stage queue
    assert len(wakeups) == 1
    assert json.loads(wakeups[0]["Body"]) == {"upstream": "shops", "batch_id": done["name"], "published": 2,
                                              "run_id": run_id}

    _subscribe(db_url, "lines", project="orders", table="orders", key=["order_id"])  # a third stage
    event = sqs_event(wakeups)
    first = chain["stage"](event)
    assert first["status"] == "succeeded", first
    assert first["chain"]["claimed"] == 2 and first["chain"]["acknowledged"] == 2
    assert _orders(query) == EXPECTED
    # The stage's loads sent the third stage its messages, and the stage woke it.
    assert query("SELECT payload FROM chute.queue WHERE stage = 'lines' AND upstream_run = %s ORDER BY 1",
                 (first["run_id"],)) == [({"keys": [{"order_id": o}]},) for o in (10, 11, 20)]
    woken = drain(chain["sqs"], chain["next_queue"])
    assert [json.loads(m["Body"])["published"] for m in woken] == [3] and first["woken"]
    assert query("SELECT stage, status, count(*) FROM chute.queue GROUP BY 1, 2 ORDER BY 1") == [
        ("lines", "ready", 3), ("orders", "done", 2)]
    assert query("SELECT trigger FROM chute.runs WHERE pipeline = 'orders' ORDER BY run_id") == [
        ("schedule",), ("sqs",)]

    again = chain["stage"](event)  # SQS delivers at least once: the same wake-up again
    assert again["status"] == "succeeded" and again["chain"]["claimed"] == 0
    assert "woken" not in again and drain(chain["sqs"], chain["next_queue"]) == []
    assert query("SELECT count(*), count(DISTINCT order_id) FROM orders") == [(3, 3)]
    # The extracted parts went to the follower's landing bucket (the image's files are read-only).
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="orders-landing")["Contents"]]
    assert sum(k.endswith(".jsonl") for k in keys) == 2


def test_a_failing_stage_keeps_upstream_rows_dead_letters_and_replays(chain, query, cli):
    chain["stage"]({"sweep": True})
    chain["broken"].add(2)  # the API fails for shop 2
    assert chain["upstream_load"]("2024-05-02")["status"] == "SUCCEEDED"
    event = sqs_event(drain(chain["sqs"], chain["queue"]))

    first = chain["stage"](event)  # message work failing is the ledger's to retry: no exception for SQS
    assert first["status"] == "failed" and first["chain"]["failed"] == 1 and first["chain"]["dead"] == 0
    assert "/shops/2/orders: HTTP 500" in first["error"]
    time.sleep(0.1)  # the backoff ([watch] retry_initial = 0.01 s)
    second = chain["stage"]({"sweep": True})  # the sweeper retries it; [follow] max_attempts = 2
    assert second["chain"]["dead"] == 1
    assert query("SELECT count(*) FROM shops") == [(2,)]  # the upstream's work untouched
    assert _orders(query) == [(10, 1, 1.5), (11, 1, 2.5)]

    listed = json.loads(cli("dlq", "list", "-p", chain["down"], "--json").output)["dead_letters"]
    dead = [d for d in listed if d["kind"] == "message"]
    assert len(dead) == 1 and "shop_id=2" in dead[0]["name"] and "HTTP 500" in dead[0]["error"]

    chain["broken"].clear()
    cli("dlq", "retry", "-p", chain["down"], "--all")
    replay = chain["stage"]({"sweep": True})
    assert replay["status"] == "succeeded" and replay["chain"]["revived"] == 1 and replay["chain"]["acknowledged"] == 1
    assert _orders(query) == EXPECTED
    assert query("SELECT status FROM chute.dead_letters WHERE kind = 'message'") == [("resolved",)]
    assert chain["sqs"].get_queue_attributes(QueueUrl=chain["dlq"], AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_stage_that_cannot_run_raises_so_sqs_redrives_the_wakeup(chain, query):
    """Failures outside the messages' work are the function's errors (SQS delivers the wake-up
    again, then parks it in the stage DLQ; the errors alarm fires): a file of the stage's landing
    zone that cannot load, and a database that cannot be reached."""
    chain["stage"]({"sweep": True})
    boto3.client("s3").put_object(Bucket="orders-landing", Key="orders/junk.jsonl", Body=b"this is not json\n")
    with pytest.raises(handlers.StageFailed, match="stage orders: orders/junk.jsonl: "):
        chain["stage"]({"sweep": True})
    assert query("SELECT name, status FROM chute.files WHERE pipeline = 'orders'") == [("orders/junk.jsonl", "failed")]

    secrets = boto3.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId="db")["SecretString"])
    secrets.put_secret_value(SecretId="db", SecretString=json.dumps({**value, "port": _free_port()}))
    with pytest.raises(handlers.RetryStep):
        chain["stage"]({"sweep": True})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

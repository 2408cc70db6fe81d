"""`chute deploy aws`: what the rendered SAM template, state machine and Terraform hold,
execution names, and the offline checks (cfn-lint, sam validate, terraform fmt, checkov)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from chute.deploy.aws import handlers
from chute.deploy.aws.model import build_model
from chute.deploy.aws.names import EXECUTION_NAME_MAX, execution_name
from chute.deploy.aws.statemachine import levels
from chute.sources.s3_events import parse_event
from chute.pipeline.graph import Pipeline, node
from chute.config.project import load_project


@pytest.fixture
def rendered(stocks, cli):
    out = stocks / "infra"
    cli("deploy", "aws", "--project", stocks, "--out", out)
    return out


def _template(out: Path) -> dict:
    return yaml.safe_load((out / "template.yaml").read_text())


def _of_type(template: dict, type_: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def test_execution_name_is_determined_by_bucket_key_and_etag():
    a = execution_name("landing", "2024/05/01/aav.us.txt", '"0cc175b9c0f1b6a831c399e269772661"')
    assert a == execution_name("landing", "2024/05/01/aav.us.txt", "0cc175b9c0f1b6a831c399e269772661")
    assert a != execution_name("landing", "2024/05/01/aav.us.txt", "92eb5ffee6ae2fec3ad71c777531578f")
    assert a != execution_name("other", "2024/05/01/aav.us.txt", "0cc175b9c0f1b6a831c399e269772661")
    assert a != execution_name("landing", "2024/05/02/aav.us.txt", "0cc175b9c0f1b6a831c399e269772661")
    long = execution_name("b", "x" * 900 + " weird name (1).csv", "e")
    for name in (a, long):
        assert len(name) <= EXECUTION_NAME_MAX and all(c.isalnum() or c in "-_" for c in name)


def test_s3_events_are_read_however_they_arrive():
    """The trigger Lambda and `chute watch` read events with one parser (chute.sources.s3_events)."""
    direct = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "landing"}, "object": {"key": "day+1/a%2Bb.us.txt", "eTag": "e1"}}}]}
    via_sqs = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(direct)},
                           {"eventSource": "aws:sqs", "body": json.dumps({"Event": "s3:TestEvent"})}]}
    # EventBridge carries the key as it is (not URL-encoded: AWS's examples, and moto).
    bridge = {"detail-type": "Object Created", "detail": {"bucket": {"name": "landing"},
                                                          "object": {"key": "day 1/a+b.us.txt", "etag": "e1"}}}
    via_sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(direct)}}]}
    sns_in_sqs = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(
        {"Type": "Notification", "Message": json.dumps(direct)})}]}
    deleted = {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {
        "bucket": {"name": "landing"}, "object": {"key": "day+1/a%2Bb.us.txt"}}}]}
    expected = [("landing", "day 1/a+b.us.txt", "e1")]
    assert parse_event(direct) == parse_event(via_sqs) == parse_event(bridge) == expected
    assert parse_event(via_sns) == parse_event(sns_in_sqs) == parse_event(json.dumps(direct)) == expected
    (found,) = parse_event(direct)
    assert (found.bucket, found.key, found.etag) == expected[0]
    assert parse_event(deleted) == parse_event("not json") == parse_event({"Event": "s3:TestEvent"}) == []


def test_template_has_the_stack(rendered):
    t = _template(rendered)
    assert set(t["Parameters"]) >= {"Environment", "AlertEmail", "VpcId", "SubnetIds", "CreateDatabase",
                                     "ExistingDatabaseSecretArn"}
    for bucket in _of_type(t, "AWS::S3::Bucket").values():
        p = bucket["Properties"]
        assert p["VersioningConfiguration"]["Status"] == "Enabled"
        assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"] == "aws:kms"
        assert all(p["PublicAccessBlockConfiguration"].values())
    landing = t["Resources"]["LandingBucket"]["Properties"]
    assert landing["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True

    functions = _of_type(t, "AWS::Serverless::Function")
    assert set(functions) == {"TriggerFunction", "NodeFunction", "LoadFunction", "NotifyFunction"}
    for f in functions.values():  # one image, one handler each
        assert f["Properties"]["PackageType"] == "Image" and f["Metadata"]["Dockerfile"] == "Dockerfile"
        assert f["Properties"]["ImageConfig"]["Command"][0].startswith("chute.deploy.aws.handlers.")
    # A DLQ only where an invocation is asynchronous: notify (the execution status rule), trigger (the
    # late-files sweep's schedule; its SQS source has the events queue's DLQ). Node and load are
    # called by Step Functions (synchronous).
    assert {k for k, f in functions.items() if "DeadLetterQueue" in f["Properties"]} == {
        "NotifyFunction", "TriggerFunction"}
    sweep = t["Resources"]["SweepLateFilesSchedule"]["Properties"]
    assert sweep["ScheduleExpression"] == "rate(1 hour)" and json.loads(sweep["Target"]["Input"]) == {"action": "sweep"}
    assert sweep["Target"]["Arn"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    assert functions["NotifyFunction"]["Properties"]["DeadLetterQueue"]["TargetArn"] == {
        "Fn::GetAtt": ["FunctionsDLQ", "Arn"]}
    assert "VpcConfig" in functions["LoadFunction"]["Properties"]
    assert functions["TriggerFunction"]["Properties"]["Events"]["LandingEvents"]["Type"] == "SQS"

    queues = _of_type(t, "AWS::SQS::Queue")
    assert queues["EventsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["EventsDLQ", "Arn"]}
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())

    alarms = _of_type(t, "AWS::CloudWatch::Alarm").values()
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert metrics >= {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Duration"), ("AWS/Lambda", "Throttles"),
                       ("AWS/States", "ExecutionsFailed"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}] for a in alarms)
    assert t["Resources"]["AlertSubscription"]["Properties"]["Protocol"] == "email"

    db = t["Resources"]["Database"]
    assert db["Condition"] == "CreateDb"
    assert db["Properties"]["StorageEncrypted"] is True and db["Properties"]["PubliclyAccessible"] is False
    assert db["Properties"]["BackupRetentionPeriod"] != 0
    assert "{{resolve:secretsmanager:" in db["Properties"]["MasterUserPassword"]["Fn::Sub"]
    assert "GenerateSecretString" in t["Resources"]["DbSecret"]["Properties"]


MANAGED_POLICIES = Path(__file__).parent / "data" / "managed_policies"


def _allow_statements(t: dict):
    """(where, statement) of every Allow in the template: roles' inline policies, managed policies,
    the policies behind ManagedPolicyArns (AWS's published documents, vendored under
    tests/data/managed_policies/: adding a managed policy means vendoring it), the KMS key policy
    and the queue policies. Deny statements restrict, so they are left out."""
    for name, r in t["Resources"].items():
        props = r.get("Properties", {})
        docs = []
        if r["Type"] == "AWS::IAM::Role":
            docs += [p["PolicyDocument"] for p in props.get("Policies", [])]
            for arn in props.get("ManagedPolicyArns", []):
                text = json.dumps(arn)
                vendored = MANAGED_POLICIES / (text.rsplit("/", 1)[-1].strip('"}') + ".json")
                assert vendored.is_file(), f"{name}: managed policy {text} is not vendored in {MANAGED_POLICIES}"
                docs.append(json.loads(vendored.read_text()))
        elif r["Type"] == "AWS::IAM::ManagedPolicy":
            docs.append(props["PolicyDocument"])
        elif r["Type"] == "AWS::KMS::Key":
            docs.append(props["KeyPolicy"])
        elif r["Type"] == "AWS::SQS::QueuePolicy":
            docs.append(props["PolicyDocument"])
        for doc in docs:
            for st in doc["Statement"]:
                if st["Effect"] == "Allow":
                    yield name, st


def test_iam_is_least_privilege(rendered):
    """No Allow names a wildcard action (`*`, `svc:*`, `svc:Prefix*`); a `*` resource only for
    the actions AWS gives no resource-level permission (model.STAR_ONLY_ACTIONS), or in a key
    policy, where `*` means the key itself. No managed policy is attached (in Terraform neither)."""
    from chute.deploy.aws.model import STAR_ONLY_ACTIONS

    t = _template(rendered)
    seen = 0
    for name, st in _allow_statements(t):
        seen += 1
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        assert not any("*" in a for a in actions), (name, st)
        if "*" in resources and t["Resources"][name]["Type"] != "AWS::KMS::Key":
            assert set(actions) <= STAR_ONLY_ACTIONS, (name, st)
    assert seen > 20
    assert not any("ManagedPolicyArns" in r.get("Properties", {}) for r in t["Resources"].values())
    main = (rendered / "terraform" / "modules" / "chute" / "main.tf").read_text()
    assert "aws_iam_role_policy_attachment" not in main and "iam::aws:policy" not in main
    allows = [b for b in main.split("statement {")[1:] if not re.search(r'effect\s*=\s*"Deny"', b.split("}")[0])]
    assert allows and not any(re.search(r'actions\s*=\s*\[[^\]]*\*', b) for b in allows)


def test_no_secret_in_the_rendered_files(rendered, db_url):
    password = db_url.split(":")[2].split("@")[0]
    for path in rendered.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".tf", ".txt", ""):
            assert password not in path.read_text(errors="ignore"), path


def test_state_machine_spreads_the_batch_over_a_distributed_map(rendered):
    """Coordinates in, counts out: the Map reads the manifest from S3 and writes its results there,
    each child processes and loads its own files, a crash is isolated to its file, and the
    parent's states only retry (a redrive resumes at the step that failed)."""
    definition = json.loads((rendered / "statemachine.asl.json").read_text())
    states = definition["States"]
    assert definition["StartAt"] == "Begin"
    files = states["Files"]
    assert files["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert files["ItemReader"]["Parameters"] == {"Bucket.$": "$.manifest.bucket", "Key.$": "$.manifest.key"}
    assert files["ResultWriter"]["Parameters"]["Bucket"] == "${StagingBucketName}"
    assert files["ItemSelector"]["keys.$"] == "$$.Map.Item.Value.keys"
    assert files["MaxConcurrency"] == 10 and files["ToleratedFailurePercentage"] == 5.0
    child = files["ItemProcessor"]["States"]
    assert child["Process"]["Parameters"]["action"] == "process"
    assert child["Process"]["Catch"][0]["Next"] == "Isolate" and child["Isolate"]["MaxConcurrency"] == 1
    one = child["Isolate"]["ItemProcessor"]["States"]
    assert one["ProcessOne"]["Catch"][0]["Next"] == "Unreadable"
    assert one["Unreadable"]["Parameters"]["action"] == "unreadable"
    assert child["Load"]["Parameters"]["action"] == "load" and child["Load"]["Retry"][0]["MaxAttempts"] >= 8
    for name in ("Begin", "Finish"):
        assert states[name]["Retry"][0]["BackoffRate"] > 1 and handlers.RetryStep.__name__ in states[name]["Retry"][0]["ErrorEquals"]
    for name in ("Begin", "Files", "Finish"):
        assert "Catch" not in states[name]
    assert [k for k, v in states.items() if v["Type"] == "Fail"] == ["FilesFailed"]

    def tasks(states):  # every Task, in the children too
        for name, st in states.items():
            if st["Type"] == "Task":
                yield name, st
            if st["Type"] == "Map":
                yield from tasks(st["ItemProcessor"]["States"])
    assert all(st.get("Retry") for _, st in tasks(states))  # shaped for retries and redrive
    assert states["NotifyFailure"]["Next"] == "FilesFailed"
    # Notifications get the counts, never the whole state.
    assert states["NotifyFailure"]["Parameters"]["execution"]["summary.$"] == "$.summary"
    assert all("$" != v for v in json.dumps(states["NotifyFailure"]["Parameters"]).split('"'))


def test_trigger_groups_files_into_items_by_count_and_size():
    files = [{"key": f"d/{i:03}.csv", "size": 10} for i in range(7)] + [{"key": "d/big.csv", "size": 1000}]
    items = handlers.items_of(files, per_item=3, item_bytes=100)
    assert [len(i["keys"]) for i in items] == [3, 3, 1, 1]
    assert items[-1] == {"keys": ["d/big.csv"]}
    assert [k for i in items for k in i["keys"]] == sorted(f["key"] for f in files)


def test_independent_nodes_become_parallel_branches():
    @node
    def cleaned(rows):
        return rows

    @node
    def by_day(cleaned):
        return cleaned

    @node
    def by_company(cleaned):
        return cleaned

    @node
    def report(by_day, by_company):
        return by_day

    plan = Pipeline([report, by_company, cleaned, by_day]).plan("rows", [], [])
    assert [sorted(level) for level in levels(plan)] == [["cleaned"], ["by_company", "by_day"], ["report"]]


def test_terraform_module_mirrors_the_template(rendered):
    main = (rendered / "terraform" / "modules" / "chute" / "main.tf").read_text()
    for resource in ('resource "aws_s3_bucket" "landing"', 'resource "aws_sfn_state_machine" "pipeline"',
                     'resource "aws_db_instance" "this"', 'resource "aws_lambda_function" "load"',
                     'resource "aws_sqs_queue" "events_dlq"', 'resource "aws_cloudwatch_metric_alarm"',
                     'resource "aws_sns_topic_subscription" "email"'):
        assert resource in main
    assert re.search(r"manage_master_user_password +=  *true", main)  # RDS generates and keeps the password
    for name in ("main.tf", "variables.tf", "outputs.tf"):
        assert (rendered / "terraform" / name).is_file()
    assert (rendered / "Dockerfile").read_text().startswith("#") and \
        "FROM public.ecr.aws/lambda/python" in (rendered / "Dockerfile").read_text()
    assert (rendered / "project" / "pipeline.py").is_file() and not (rendered / "project" / "landing").exists()


def test_a_miswired_project_is_refused(stocks, cli):
    (stocks / "pipeline.py").write_text("from chute import node\n\n@node\ndef x(missing):\n    return missing\n")
    result = cli("deploy", "aws", "--project", stocks, expect=2)
    assert "missing" in result.output


def test_check_passes_on_the_stocks_example(rendered, cli):
    """Runs cfn-lint, sam validate, terraform fmt (or python-hcl2) and checkov for real: ~40 s."""
    result = cli("deploy", "aws", "--project", rendered.parent, "--out", rendered, "--check", "--json", expect=None)
    report = json.loads(result.output)
    by_tool = {c["tool"]: c for c in report["checks"]}
    assert result.exit_code == 0, by_tool
    for tool in ("cfn-lint", "sam validate", "checkov (cloudformation)", "checkov (terraform)", "hcl2 parse"):
        assert by_tool[tool]["status"] == "passed", by_tool[tool]
    assert by_tool["terraform fmt"]["status"] in ("passed", "unavailable")
    assert " 0 failed" in by_tool["checkov (cloudformation)"]["summary"]


def test_aws_settings_bound_the_database_and_choose_proxy_iam_auth_and_fargate(stocks, cli):
    """[aws] settings, rendered in SAM and Terraform and passing the offline checks (cfn-lint,
    sam validate, checkov, hcl2): load_concurrency is the load function's reserved concurrency
    (at most that many loads, so 2x sessions, at once), map_concurrency the Map's, an RDS Proxy
    whose endpoint the functions use, IAM database auth, and the children as ECS Fargate tasks."""
    with (stocks / "chute.toml").open("a") as f:
        f.write('\n[aws]\nload_concurrency = 3\nmap_concurrency = 7\nrds_proxy = true\ndatabase_auth = "iam"\n'
                'load_runner = "fargate"\n')
    out = stocks / "infra"
    result = cli("deploy", "aws", "--project", stocks, "--out", out, "--check", "--json", expect=None)
    t = _template(out)
    r = t["Resources"]
    assert r["LoadFunction"]["Properties"]["ReservedConcurrentExecutions"] == 3
    definition = json.loads((out / "statemachine.asl.json").read_text())
    files = definition["States"]["Files"]
    assert files["MaxConcurrency"] == 7
    task = files["ItemProcessor"]["States"]["Task"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert task["Parameters"]["TaskDefinition"] == "${TaskDefinitionArn}"
    container = r["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["EntryPoint"] == ["python3", "-m", "chute.deploy.aws.task"]
    assert r["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]["TaskDefinitionArn"] == {
        "Ref": "TaskDefinition"}
    env = r["LoadFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CHUTE_DB_HOST"] == {"Fn::If": ["CreateDb", {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}, ""]}
    assert env["CHUTE_DB_AUTH"] == "iam" and env["CHUTE_DB_CA"] == "/opt/chute/rds-ca.pem"
    assert r["DatabaseProxy"]["Properties"]["Auth"][0]["IAMAuth"] == "REQUIRED"
    assert r["DatabaseProxy"]["Properties"]["RequireTLS"] is True
    load_policy = r["LoadRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == ["rds-db:connect"] for s in load_policy)
    machine_policy = r["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == ["ecs:RunTask"] and s["Resource"] == [{"Ref": "TaskDefinition"}] for s in machine_policy)
    main = (out / "terraform" / "modules" / "chute" / "main.tf").read_text()
    for block in ('resource "aws_db_proxy" "this"', 'resource "aws_ecs_task_definition" "load"',
                  'resource "aws_ecs_cluster" "load"', "TaskDefinitionArn = aws_ecs_task_definition.load.arn",
                  "reserved_concurrent_executions = 3"):
        assert block in main, block
    by_tool = {c["tool"]: c for c in json.loads(result.output)["checks"]}
    assert result.exit_code == 0, by_tool
    for tool in ("cfn-lint", "sam validate", "checkov (cloudformation)", "checkov (terraform)", "hcl2 parse"):
        assert by_tool[tool]["status"] == "passed", by_tool[tool]


def test_database_url_verifies_tls_with_the_image_bundle_and_signs_iam_tokens(sfn_aws, monkeypatch, rendered):
    import boto3
    from fixtures_deploy_aws import db_secret

    secret = db_secret(boto3.client("secretsmanager"), "postgresql://chute:s3cret@db.internal:5432/chute")
    for name in ("CHUTE_DB_HOST", "CHUTE_DB_CA", "CHUTE_DB_AUTH", "CHUTE_DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHUTE_DB_SECRET_ARN", secret)
    assert handlers.database_url() == "postgresql://chute:s3cret@db.internal:5432/chute"

    monkeypatch.setenv("CHUTE_DB_CA", "/opt/chute/rds-ca.pem")
    assert handlers.database_url().endswith("@db.internal:5432/chute?sslmode=verify-full"
                                            "&sslrootcert=/opt/chute/rds-ca.pem")
    monkeypatch.setenv("CHUTE_DB_AUTH", "iam")
    monkeypatch.setenv("CHUTE_DB_HOST", "proxy.internal")
    from urllib.parse import unquote, urlsplit

    url = urlsplit(handlers.database_url())
    token = unquote(url.password)
    assert url.hostname == "proxy.internal" and "s3cret" not in token
    assert token.startswith("proxy.internal:5432/?Action=connect&DBUser=chute") and "X-Amz-Signature=" in token

    dockerfile = (rendered / "Dockerfile").read_text()
    assert "truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in dockerfile
    assert "> /opt/chute/rds-ca.pem" in dockerfile


def test_event_sources_are_bounded_report_item_failures_and_markers_are_filtered(rendered):
    t = _template(rendered)
    functions = _of_type(t, "AWS::Serverless::Function")
    trigger = functions["TriggerFunction"]["Properties"]
    source = trigger["Events"]["LandingEvents"]["Properties"]
    assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] <= trigger["ReservedConcurrentExecutions"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    detail = t["Resources"]["LandingEventsRule"]["Properties"]["EventPattern"]["detail"]
    condition, markers, every = detail["Fn::If"]
    assert condition == "WaitsForMarker" and t["Conditions"]["WaitsForMarker"] == {
        "Fn::Equals": [{"Ref": "WaitForMarker"}, "yes"]}
    assert markers["object"] == {"key": [{"suffix": ".SUCCESS"}]} and "object" not in every
    status = t["Resources"]["ExecutionStatusRule"]["Properties"]
    assert status["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert status["Targets"][0]["Arn"] == {"Fn::GetAtt": ["NotifyFunction", "Arn"]}
    assert status["Targets"][0]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["FunctionsDLQ", "Arn"]}}
    main = (rendered / "terraform" / "modules" / "chute" / "main.tf").read_text()
    assert 'function_response_types = ["ReportBatchItemFailures"]' in main
    assert re.search(r"scaling_config \{\s*maximum_concurrency = 5\s*\}", main)
    assert 'suffix = ".SUCCESS"' in main


def test_a_failed_step_is_notified_with_how_to_redrive_and_files_failed_is_not_twice(sfn_aws, monkeypatch):
    import boto3

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"})
    parked = sqs.create_queue(QueueName="failed-runs")["QueueUrl"]
    monkeypatch.setattr(handlers, "project", lambda: type("P", (), {"name": "stocks"})())
    monkeypatch.setenv("CHUTE_TOPIC_ARN", topic)
    monkeypatch.setenv("CHUTE_FAILED_RUNS_QUEUE_URL", parked)
    arn = "arn:aws:states:us-east-1:123456789012:execution:stocks-pipeline:day-1"
    event = {"detail-type": "Step Functions Execution Status Change", "source": "aws.states", "detail": {
        "executionArn": arn, "name": "day-1", "status": "FAILED", "error": "States.TaskFailed",
        "cause": "Begin: could not reach the database",
        "input": json.dumps({"batch_id": "day-1", "bucket": "landing", "manifest": {"bucket": "s", "key": "k"}})}}
    assert handlers.notify(event)["parked"]
    from fixtures_deploy_aws import bodies

    (note,) = bodies(sqs, inbox)
    assert "batch day-1: failed" in note and "could not reach the database" in note
    assert f"redrive-execution --execution-arn {arn}" in note
    handlers.notify({**event, "detail": {**event["detail"], "error": "ChuteFilesFailed"}})
    assert bodies(sqs, inbox) == []  # NotifyFailure already sent the counts


def test_functions_reach_only_the_database_and_the_vpc_endpoints(rendered):
    r = _template(rendered)["Resources"]
    assert r["S3Endpoint"]["Properties"]["VpcEndpointType"] == "Gateway"
    secrets = r["SecretsmanagerEndpoint"]["Properties"]
    assert secrets["VpcEndpointType"] == "Interface" and secrets["PrivateDnsEnabled"] is True
    assert secrets["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
    egress = [e for e in r["LoadSecurityGroup"]["Properties"]["SecurityGroupEgress"]] + [
        v["Properties"] for v in r.values() if v["Type"] == "AWS::EC2::SecurityGroupEgress"
        and v["Properties"]["GroupId"] == {"Ref": "LoadSecurityGroup"}]
    assert not any("CidrIp" in e for e in egress)  # no 0.0.0.0/0 (nor any address range)
    assert {(e["FromPort"], json.dumps(e.get("DestinationSecurityGroupId") or e.get("DestinationPrefixListId"),
                                       sort_keys=True)) for e in egress} == {
        (443, '{"Ref": "S3PrefixListId"}'), (443, '{"Ref": "EndpointSecurityGroup"}'),
        (5432, '{"Fn::If": ["CreateDb", {"Ref": "DbSecurityGroup"}, {"Ref": "DatabaseSecurityGroupId"}]}')}
    main = (rendered / "terraform" / "modules" / "chute" / "main.tf").read_text()
    assert 'resource "aws_vpc_endpoint" "s3"' in main and 'resource "aws_vpc_endpoint" "secretsmanager"' in main
    assert "aws_iam_role_policy_attachment" not in main


def test_the_image_requirements_resolve_for_its_python_and_platform(rendered, tmp_path):
    """Every pinned requirement of the Lambda image has a binary wheel for the image's CPython
    (render.PYTHON_VERSION) on manylinux x86_64, and so do their dependencies: what `pip download --only-binary=:all:
    --platform ... --python-version ...` checks, resolved here with `pip install --dry-run
    --report` (the same resolver and tags, without downloading the wheels). Skipped without an
    index."""
    import subprocess
    import sys

    from chute.deploy.aws.render import PYTHON_VERSION

    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
         "--platform", "manylinux_2_17_x86_64", "--python-version", PYTHON_VERSION, "--implementation", "cp",
         "--abi", "cp" + PYTHON_VERSION.replace(".", ""), "--abi", "abi3", "--abi", "none",
         "--target", str(tmp_path / "target"), "--report", str(report), "--quiet",
         "-r", str(rendered / "requirements.txt")], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and any(s in done.stderr for s in ("Could not fetch URL", "NewConnectionError",
                                                                "Failed to establish", "Network is unreachable")):
        pytest.skip(f"no package index reachable: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    installs = json.loads(report.read_text())["install"]
    wanted = {line.split("==")[0].split("[")[0].lower().replace("_", "-")
              for line in (rendered / "requirements.txt").read_text().splitlines() if "==" in line}
    names = {i["metadata"]["name"].lower().replace("_", "-") for i in installs}
    assert wanted <= names and "psycopg-binary" in names  # the pins, and what they need (psycopg[binary])
    assert all(i["download_info"]["url"].endswith(".whl") for i in installs)


def _refs_of(node) -> set[tuple[str, str | None]]:
    from chute.deploy.aws.nested import references

    return references(node)


def test_nested_stacks_are_self_consistent(stocks, cli, tmp_path):
    """--nested: the root and the child templates hold the flat template's resources, every
    reference across stacks goes through a child parameter fed from another stack's output, and
    the child stacks depend on each other one way only."""
    from graphlib import TopologicalSorter

    flat_out, nested_out = tmp_path / "flat", tmp_path / "nested"
    cli("deploy", "aws", "--project", stocks, "--out", flat_out)
    cli("deploy", "aws", "--project", stocks, "--out", nested_out, "--nested")
    flat, root = _template(flat_out), _template(nested_out)
    assert not list(flat_out.glob("stack-*.yaml"))
    stacks = root["Resources"]
    assert {s["Type"] for s in stacks.values()} == {"AWS::CloudFormation::Stack"}
    children = {name: yaml.safe_load((nested_out / s["Properties"]["TemplateURL"]).read_text())
                for name, s in stacks.items()}
    assert set(children) == {"StorageStack", "IamStack", "FunctionsStack", "AlarmsStack"}
    # The same resources, each in exactly one child, of the same type.
    held = [(n, r["Type"]) for c in children.values() for n, r in c["Resources"].items()]
    assert sorted(held) == sorted((n, r["Type"]) for n, r in flat["Resources"].items())
    assert children["AlarmsStack"]["Resources"]["NodeErrorsAlarm"]["Type"] == "AWS::CloudWatch::Alarm"
    assert "LoadFunction" in children["FunctionsStack"]["Resources"]
    assert "NodeRole" in children["IamStack"]["Resources"]
    assert "EventsQueue" in children["StorageStack"]["Resources"]

    depends: dict[str, set[str]] = {}
    for name, child in children.items():
        params, local = child.get("Parameters", {}), child["Resources"]
        conditions = child.get("Conditions", {})
        for ref, attribute in _refs_of(child["Resources"]) | _refs_of(child.get("Outputs", {})):
            assert ref.startswith("AWS::") and ref != "AWS::StackName" or ref in local or \
                (ref in params and attribute is None), f"{name}: {ref}.{attribute} is not resolved in the stack"
        assert not set(_refs_of(conditions)) - {(p, None) for p in params}
        fed = stacks[name]["Properties"].get("Parameters", {})
        assert set(fed) == set(params), f"{name}: parameters not fed by the root"
        depends[name] = set()
        for param, value in fed.items():
            if "Fn::GetAtt" in value:
                producer, output = value["Fn::GetAtt"]
                assert producer != name and output.startswith("Outputs.")
                assert output.removeprefix("Outputs.") in children[producer]["Outputs"]
                depends[name].add(producer)
            else:
                (ref,) = [r for r, _ in _refs_of(value)]
                assert ref in root["Parameters"] or ref == "AWS::StackName"
        for dep in stacks[name].get("DependsOn", []):
            depends[name].add(dep)
    order = list(TopologicalSorter(depends).static_order())  # raises CycleError on a cycle
    assert order.index("StorageStack") < order.index("FunctionsStack") < order.index("AlarmsStack")
    # Names built from the stack name are the root's, as in the flat template.
    trigger = children["FunctionsStack"]["Resources"]["TriggerFunction"]["Properties"]["FunctionName"]
    assert trigger == {"Fn::Sub": "${ParentStackName}-trigger"}
    assert set(root["Outputs"]) == set(flat["Outputs"])
    for output in root["Outputs"].values():
        assert {r for r, _ in _refs_of(output)} <= set(stacks) | set(root["Parameters"])


def test_check_nested_and_flat_have_the_same_findings(stocks, cli, tmp_path):
    """cfn-lint passes on the root and on each child template; checkov finds the same in the flat
    template as in the nested ones (all skipped with a reason, none failed). ~60 s."""
    from chute.deploy.aws.check import cfn_lint, checkov, find_tool, templates

    if not (find_tool("cfn-lint") and find_tool("checkov")):
        pytest.skip("cfn-lint and checkov are not installed (make iac)")
    flat_out, nested_out = tmp_path / "flat", tmp_path / "nested"
    cli("deploy", "aws", "--project", stocks, "--out", flat_out)
    cli("deploy", "aws", "--project", stocks, "--out", nested_out, "--nested")
    files = templates(nested_out)
    assert len(files) == 5
    for name in files:  # one file at a time, so that a finding names its file
        done = subprocess.run([find_tool("cfn-lint"), "--format", "parseable", name], cwd=nested_out,
                              capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    results = {}
    for out in (flat_out, nested_out):
        results[out.name] = checkov(out, "cloudformation", [a for n in templates(out) for a in ("--file", n)])
    assert results["flat"].status == results["nested"].status == "passed"
    assert sorted(results["flat"].findings) == sorted(results["nested"].findings)
    assert results["flat"].findings  # the accepted findings, skipped with their reasons
    assert results["flat"].summary == results["nested"].summary

"""End to end on moto's server: the generated state machine runs the stocks pipeline
through chute's Lambda handlers (in process) into a real PostgreSQL, exactly once."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from fixtures_deploy_aws import bodies, create_stack, drain, finished, placeholder_zip, sqs_event

boto3 = pytest.importorskip("boto3")

from chute.deploy.aws import handlers  # noqa: E402
from chute.deploy.aws.model import build_model  # noqa: E402
from chute.config.project import load_project  # noqa: E402

HANDLERS = "chute.deploy.aws.handlers"


def _finished(sfn, arn: str) -> dict:
    return finished(sfn, arn, timeout=120)


@pytest.fixture
def stack(stocks, db_url, lambdas_in_process, monkeypatch):
    """The resources the template describes, created in moto from the same model."""
    for name in ("CHUTE_PROJECT_DIR", "CHUTE_STAGING_BUCKET", "CHUTE_STAGING_PREFIX", "CHUTE_LANDING_PREFIX",
                 "CHUTE_DB_SECRET_ARN", "CHUTE_TOPIC_ARN", "CHUTE_FAILED_RUNS_QUEUE_URL", "CHUTE_WAIT_FOR_MARKER",
                 "CHUTE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)  # restored after the test; create_stack sets them
    project = load_project(stocks)
    made = create_stack(build_model(project), stocks, db_url)
    for name, value in made["env"].items():
        monkeypatch.setenv(name, value)
    return {**made, "project": project}


def _upload(stack, folder: str, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        stack["s3"].put_object(Bucket="landing", Key=f"{folder}/{name}", Body=body)
    stack["s3"].put_object(Bucket="landing", Key=f"{folder}/.SUCCESS", Body=b"")


def _top_files(stocks: Path) -> list[Path]:
    from chute.run.plan import build_plan

    project = load_project(stocks)
    plan = build_plan(project)
    static = plan.run_static({"top_companies": project.path("reference/top_companies.txt")})
    return [p for p in sorted((stocks / "landing").iterdir()) if plan.wants(p.name, static) is None]


def test_marker_runs_the_pipeline_once_into_postgres(stack, stocks, query):
    landing = sorted((stocks / "landing").iterdir())
    _upload(stack, "2024-05-01", {p.name: p.read_bytes() for p in landing})
    event = sqs_event(drain(stack["sqs"], stack["events"]))  # s3:TestEvent, every file, the marker

    report = handlers.trigger(event)
    assert len(report["started"]) == 1 and not report["duplicates"]
    executions = stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]
    assert [e["name"] for e in executions] == report["started"]
    done = _finished(stack["sfn"], executions[0]["executionArn"])
    assert done["status"] == "SUCCEEDED", done

    top = _top_files(stocks)
    expected = sum(len(p.read_text().splitlines()) - 1 for p in top)
    assert query("select count(*) from historical_stocks_data")[0][0] == expected
    loaded = query("select name, status from chute.files order by name")
    assert loaded == [(f"2024-05-01/{p.name}", "loaded") for p in top]
    assert query("select count(distinct company_name) from historical_stocks_data")[0][0] == len(top)

    # The same event again (SQS delivers at least once): no second execution, no second load.
    again = handlers.trigger(event)
    assert again["duplicates"] == report["started"] and not again["started"]
    assert len(stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]) == 1
    assert query("select count(*) from historical_stocks_data")[0][0] == expected
    assert query("select count(*), min(status) from chute.runs") == [(1, "succeeded")]

    notes = bodies(stack["sqs"], stack["inbox"])
    assert len(notes) == 1 and "succeeded" in notes[0] and f"rows loaded: {expected}" in notes[0]
    assert bodies(stack["sqs"], stack["failed_runs"]) == []


def test_bad_file_fails_the_run_notifies_and_parks_the_batch(stack, stocks, query):
    good = _top_files(stocks)[0]
    bad_name = _top_files(stocks)[1].name
    _upload(stack, "bad-day", {good.name: good.read_bytes(), bad_name: b"Date,Open\n2024-05-01,abc\n"})
    handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))
    execution = stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"][0]
    assert _finished(stack["sfn"], execution["executionArn"])["status"] == "FAILED"

    assert dict(query("select name, status from chute.files")) == {
        f"bad-day/{bad_name}": "failed", f"bad-day/{good.name}": "loaded"}
    # One bad column only: pyarrow converts columns on threads, so with two bad ones
    # either could be named first.
    assert "column 'Open'" in query("select error from chute.files where status = 'failed'")[0][0]
    assert query("select count(*) from historical_stocks_data")[0][0] == len(good.read_text().splitlines()) - 1
    notes = bodies(stack["sqs"], stack["inbox"])
    assert len(notes) == 1 and "failed" in notes[0] and bad_name in notes[0]
    parked = [json.loads(b) for b in bodies(stack["sqs"], stack["failed_runs"])]
    assert [p["batch_id"] for p in parked] == [execution["name"]]


def test_a_file_that_crashes_its_read_is_failed_alone_and_named(stack, stocks, query, monkeypatch):
    """A Read that dies (MemoryError stands in for Lambda running out of memory or time) fails its
    child's Process; the child processes its files one at a time, records that one `failed` with
    the crash's error, and loads the others; the notification names it."""
    top = _top_files(stocks)
    crashing = top[2]
    real_read = handlers.read_source

    def read_source(data, *args, **kwargs):
        if bytes(data) == crashing.read_bytes():
            raise MemoryError("Runtime exited: out of memory (stand-in)")
        return real_read(data, *args, **kwargs)

    monkeypatch.setattr(handlers, "read_source", read_source)
    _upload(stack, "crash-day", {p.name: p.read_bytes() for p in top})
    report = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))
    execution = stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"][0]
    assert execution["name"] == report["started"][0]
    assert _finished(stack["sfn"], execution["executionArn"])["status"] == "FAILED"

    files = dict(query("select name, status from chute.files"))
    assert files == {f"crash-day/{p.name}": ("failed" if p == crashing else "loaded") for p in top}
    error = query("select error from chute.files where status = 'failed'")[0][0]
    assert error.startswith("MemoryError: Runtime exited: out of memory")
    expected = sum(len(p.read_text().splitlines()) - 1 for p in top if p != crashing)
    assert query("select count(*) from historical_stocks_data")[0][0] == expected
    notes = bodies(stack["sqs"], stack["inbox"])
    assert len(notes) == 1 and "1 failed" in notes[0] and f"failed: crash-day/{crashing.name}: MemoryError" in notes[0]
    parked = [json.loads(b) for b in bodies(stack["sqs"], stack["failed_runs"])]
    assert [p["batch_id"] for p in parked] == [execution["name"]] and "files" not in parked[0]


def test_a_non_recursive_project_ignores_nested_objects(stack, stocks, monkeypatch):
    """`[landing] recursive = false`: the trigger takes landing/<a> and ignores landing/sub/<b> (a
    name the patterns match), whether each object starts its own execution or a .SUCCESS marker
    batches its folder - the rule `chute watch` applies (sources.s3_events.wanted)."""
    config = stocks / "chute.toml"
    patterns = 'patterns = ["*.us.txt", "*.us.csv"]\n'
    assert patterns in config.read_text()
    config.write_text(config.read_text().replace(patterns, patterns + "recursive = false\n", 1))
    for cached in (handlers._project, handlers._plan, handlers._static):
        cached.cache_clear()
    # The trigger's part ends with start_execution: a state machine that only passes keeps the
    # pipeline out of this test, and the manifest the trigger wrote is what it decided. The names
    # are of top companies, so that the pipeline's file filter (applied by the trigger) keeps them.
    top = _top_files(stocks)
    a, b = f"landing/{top[0].name}", f"landing/sub/{top[1].name}"
    role = boto3.client("iam").get_role(RoleName="chute")["Role"]["Arn"]
    passing = stack["sfn"].create_state_machine(name="stocks-pass", roleArn=role, definition=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    monkeypatch.setenv("CHUTE_STATE_MACHINE_ARN", passing)
    monkeypatch.setenv("CHUTE_LANDING_PREFIX", "landing/")
    body = b"Date,Open,High,Low,Close,Volume,OpenInt\n"
    for key in (a, b):
        stack["s3"].put_object(Bucket="landing", Key=key, Body=body)

    def started_files(report: dict) -> list[list[str]]:
        executions = {e["name"]: e["executionArn"]
                      for e in stack["sfn"].list_executions(stateMachineArn=passing)["executions"]}
        manifests = [json.loads(stack["sfn"].describe_execution(executionArn=executions[name])["input"])["manifest"]
                     for name in report["started"]]
        return [[k for item in json.loads(stack["s3"].get_object(Bucket=m["bucket"], Key=m["key"])["Body"].read())
                 for k in item["keys"]] for m in manifests]

    monkeypatch.setenv("CHUTE_WAIT_FOR_MARKER", "no")  # each object its own execution
    report = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))
    assert b in report["ignored"]
    assert started_files(report) == [[a]]

    monkeypatch.setenv("CHUTE_WAIT_FOR_MARKER", "yes")  # the marker batches the files of its folder
    stack["s3"].put_object(Bucket="landing", Key="landing/.SUCCESS", Body=b"")
    report = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))
    assert started_files(report) == [[a]]


def test_the_load_step_retries_a_database_away_but_not_a_wrong_password(stack):
    """handlers.load (its first step, begin, is the first to open the database): a database that
    cannot be reached raises RetryStep (the state machine's Retry matches it); a wrong password
    raises DatabaseRefused at once, so the step fails instead of retrying a password that will
    not change."""
    from chute.errors import DatabaseRefused, DatabaseUnavailable

    secrets = boto3.client("secretsmanager")
    right = json.loads(secrets.get_secret_value(SecretId="db")["SecretString"])
    batch = {"action": "begin", "batch_id": "load-errors", "bucket": "landing", "execution": "load-errors"}

    secrets.put_secret_value(SecretId="db", SecretString=json.dumps({**right, "password": "wrong"}))
    with pytest.raises(DatabaseRefused):
        handlers.load(batch)

    with socket.socket() as s:  # a port nobody listens on: the server stopped or not up yet
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    secrets.put_secret_value(SecretId="db", SecretString=json.dumps({**right, "port": closed}))
    with pytest.raises(handlers.RetryStep) as retried:
        handlers.load(batch)
    assert isinstance(retried.value.__cause__, DatabaseUnavailable)

    secrets.put_secret_value(SecretId="db", SecretString=json.dumps(right))
    run_id = handlers.load(batch)["run_id"]  # the same step, once the database is there
    assert handlers.load(batch)["run_id"] == run_id  # retried or redriven: the same run


def test_s3_eventbridge_sqs_reach_the_trigger_as_the_template_wires_them(stack, stocks, query, monkeypatch):
    """The landing bucket's EventBridge notifications, the rule with the template's event pattern
    (WaitForMarker=yes: markers only), its queue, and the trigger's event source mapping with the
    template's settings, created in moto from the rendered template: three files and a marker make
    exactly one trigger invocation, for the marker, and the batch loads. The trigger runs with its
    own environment only, as its template entry lists it."""
    from fixtures_deploy_aws import resolved, template_of

    s3, sqs, lam = stack["s3"], stack["sqs"], boto3.client("lambda")
    events = boto3.client("events")
    resources = template_of(build_model(stack["project"]))["Resources"]
    assert resources["LandingBucket"]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    queue = sqs.create_queue(QueueName="bridged-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def moto_value(value):
        if isinstance(value, dict) and "Fn::If" in value:  # WaitsForMarker: WaitForMarker=yes
            condition, yes, no = value["Fn::If"]
            return moto_value(yes if condition == "WaitsForMarker" else no)
        if isinstance(value, dict) and "Ref" in value:
            return {"LandingBucket": "landing"}[value["Ref"]]
        if isinstance(value, dict):
            return {k: moto_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [moto_value(v) for v in value]
        return value

    rule = resources["LandingEventsRule"]["Properties"]
    events.put_rule(Name="landing-events", EventPattern=json.dumps(moto_value(rule["EventPattern"])))
    events.put_targets(Rule="landing-events", Targets=[{"Id": "events-queue", "Arn": queue_arn}])
    source = dict(resources["TriggerFunction"]["Properties"]["Events"]["LandingEvents"]["Properties"])
    source.pop("Queue")
    # Its own copy of the trigger function (its template environment), for the mapping alone.
    trigger_fn = lam.get_function(FunctionName="stocks-trigger")["Configuration"]
    lam.create_function(FunctionName="wired-trigger", Runtime="python3.12", Role=trigger_fn["Role"],
                        Handler=trigger_fn["Handler"], Code={"ZipFile": placeholder_zip()},
                        Environment=trigger_fn["Environment"])
    mapping = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="wired-trigger", **source)
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["ScalingConfig"] == source["ScalingConfig"] and got["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"]

    own = {k: resolved(v, {"StagingBucket": "staging", "WaitForMarker": "yes",
                           "PipelineStateMachine": stack["machine"]}, stocks)
           for k, v in resources["TriggerFunction"]["Properties"]["Environment"]["Variables"].items()}
    assert lam.get_function_configuration(FunctionName="wired-trigger")["Environment"]["Variables"] == own
    calls = []
    real_trigger = handlers.trigger

    def trigger(event, context=None):
        keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in event["Records"]]
        calls.append((keys, handlers.environ("CHUTE_DB_SECRET_ARN"), handlers.environ("CHUTE_STAGING_BUCKET")))
        return real_trigger(event, context)

    monkeypatch.setattr(handlers, "trigger", trigger)
    top = _top_files(stocks)[:3]
    _upload(stack, "bridged", {p.name: p.read_bytes() for p in top})
    for _ in range(100):
        if stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]:
            break
        time.sleep(0.1)
    assert calls == [(["bridged/.SUCCESS"], None, "staging")]
    (execution,) = stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]
    assert _finished(stack["sfn"], execution["executionArn"])["status"] == "SUCCEEDED"
    assert query("select count(*) from chute.files where status = 'loaded'")[0][0] == 3
    # Nothing of this wiring outlives the test.
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    events.remove_targets(Rule="landing-events", Ids=["events-queue"])
    events.delete_rule(Name="landing-events")


def test_a_throttled_record_comes_back_alone_in_batch_item_failures(stack, stocks, monkeypatch):
    """Two markers in one SQS batch; starting the first one's execution is throttled: it is reported
    in batchItemFailures (SQS delivers it again), the other starts."""
    from botocore.exceptions import ClientError

    top = _top_files(stocks)
    _upload(stack, "one", {top[0].name: top[0].read_bytes()})
    _upload(stack, "two", {top[1].name: top[1].read_bytes()})
    messages = [m for m in drain(stack["sqs"], stack["events"])
                if any(o.key.endswith("/.SUCCESS") for o in handlers.parse_event(m["Body"]))]
    assert len(messages) == 2
    real_client = handlers.client

    class Throttled:
        def __init__(self, sfn):
            self.sfn, self.exceptions = sfn, sfn.exceptions

        def start_execution(self, **kwargs):
            if json.loads(kwargs["input"])["event_key"] == "one/.SUCCESS":
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                                  "StartExecution")
            return self.sfn.start_execution(**kwargs)

    monkeypatch.setattr(handlers, "client", lambda name: Throttled(real_client(name)) if name == "stepfunctions"
                        else real_client(name))
    report = handlers.trigger(sqs_event(messages))
    first = next(m for m in messages if handlers.parse_event(m["Body"])[0].key == "one/.SUCCESS")
    assert report["batchItemFailures"] == [{"itemIdentifier": first["MessageId"]}]
    assert len(report["started"]) == 1
    monkeypatch.setattr(handlers, "client", real_client)
    again = handlers.trigger(sqs_event([first]))  # delivered again: it starts now
    assert len(again["started"]) == 1 and not again["batchItemFailures"]
    for name in report["started"] + again["started"]:  # moto's reset does not stop running executions
        assert _finished(stack["sfn"], stack["machine"].replace(":stateMachine:", ":execution:") + ":" + name)[
            "status"] == "SUCCEEDED"


def test_a_rerun_after_the_bad_file_is_fixed_loads_exactly_that_file(stack, stocks, query, cli):
    """`chute deploy rerun BATCH --state-machine ARN`: a new execution of the same manifest; the
    file loaded the first time is left alone (unchanged), the fixed one loads; two runs."""
    good, fixed = _top_files(stocks)[:2]
    _upload(stack, "redo", {good.name: good.read_bytes(), fixed.name: b"Date,Open\n2024-05-01,abc\n"})
    first = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))["started"][0]
    arn = stack["machine"].replace(":stateMachine:", ":execution:") + ":" + first
    assert _finished(stack["sfn"], arn)["status"] == "FAILED"
    assert dict(query("select name, status from chute.files")) == {
        f"redo/{good.name}": "loaded", f"redo/{fixed.name}": "failed"}

    stack["s3"].put_object(Bucket="landing", Key=f"redo/{fixed.name}", Body=fixed.read_bytes())  # the fix
    drain(stack["sqs"], stack["events"])  # its event: no marker, nothing starts
    started = json.loads(cli("deploy", "rerun", first, "--state-machine", stack["machine"], "--json").output)
    assert started["execution"] == first[:77] + "-r1" and started["rerun_of"] == first
    assert _finished(stack["sfn"], started["execution_arn"])["status"] == "SUCCEEDED"

    runs = [r for (r,) in query("select run_id from chute.runs order by run_id")]
    assert len(runs) == 2, [(e["name"], json.loads(stack["sfn"].describe_execution(executionArn=e["executionArn"])[
        "input"]).get("event_key")) for e in stack["sfn"].list_executions(stateMachineArn=stack["machine"])["executions"]]
    assert query("select name, status, run_id from chute.files where status <> 'failed' order by run_id") == [
        (f"redo/{good.name}", "loaded", runs[0]), (f"redo/{fixed.name}", "loaded", runs[1])]
    expected = sum(len(p.read_text().splitlines()) - 1 for p in (good, fixed))
    assert query("select count(*) from historical_stocks_data")[0][0] == expected
    again = json.loads(cli("deploy", "rerun", first, "--state-machine", stack["machine"], "--json").output)
    assert again["execution"].endswith("-r2")
    assert _finished(stack["sfn"], again["execution_arn"])["status"] == "SUCCEEDED"
    assert query("select count(*) from historical_stocks_data")[0][0] == expected  # nothing twice


def test_a_file_after_its_folders_marker_is_swept_once(stack, stocks, query):
    """Marker mode: a file that lands in a folder after its marker starts nothing by itself; the
    trigger's hourly sweep (its schedule's input) starts one execution with exactly that file, and
    a second sweep starts nothing."""
    first, late = _top_files(stocks)[:2]
    _upload(stack, "late-day", {first.name: first.read_bytes()})
    name = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))["started"][0]
    assert _finished(stack["sfn"], stack["machine"].replace(":stateMachine:", ":execution:") + ":" + name)[
        "status"] == "SUCCEEDED"
    time.sleep(1.1)  # S3 times are in seconds: the late file lands a second after the marker
    stack["s3"].put_object(Bucket="landing", Key=f"late-day/{late.name}", Body=late.read_bytes())
    assert handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))["started"] == []

    swept = handlers.trigger({"action": "sweep"})
    (late_run,) = swept["started"]
    assert late_run.startswith("late-")
    arn = stack["machine"].replace(":stateMachine:", ":execution:") + ":" + late_run
    assert _finished(stack["sfn"], arn)["status"] == "SUCCEEDED"
    assert dict(query("select name, status from chute.files")) == {
        f"late-day/{first.name}": "loaded", f"late-day/{late.name}": "loaded"}
    again = handlers.trigger({"action": "sweep"})
    assert again["started"] == [] and again["duplicates"] == [late_run]


def test_files_of_a_child_that_fails_for_good_are_recorded_failed_by_finish(stack, stocks, query, monkeypatch):
    """A child whose Load fails past its retries (not a bad file: a bug, here) leaves no result.
    moto's Map succeeds anyway (AWS's would too, within ToleratedFailurePercentage): Finish finds
    the item without a result and records its files `failed`, naming why; the other items load."""
    from chute.deploy.aws import staged_load

    top = _top_files(stocks)[:4]
    with (stocks / "chute.toml").open("a") as f:
        f.write("\n[aws]\nfiles_per_child = 2\n")  # two items of two files
    for cached in (handlers._project, handlers._plan, handlers._static):
        cached.cache_clear()
    doomed = {f"broken/{p.name}" for p in top[:2]}  # the first item, in key order
    real = staged_load.load_files

    def load_files(project, db_url, run_id, files):
        if {f.entry.name for f in files} == doomed:
            raise RuntimeError("a bug in the load (stand-in)")
        return real(project, db_url, run_id, files)

    monkeypatch.setattr(staged_load, "load_files", load_files)
    _upload(stack, "broken", {p.name: p.read_bytes() for p in top})
    (name,) = handlers.trigger(sqs_event(drain(stack["sqs"], stack["events"])))["started"]
    arn = stack["machine"].replace(":stateMachine:", ":execution:") + ":" + name
    assert _finished(stack["sfn"], arn)["status"] == "FAILED"
    files = dict(query("select name, status from chute.files"))
    assert files == {f"broken/{p.name}": ("failed" if f"broken/{p.name}" in doomed else "loaded") for p in top}
    errors = {e for (e,) in query("select error from chute.files where status = 'failed'")}
    assert len(errors) == 1 and "its child execution did not finish" in errors.pop()
    (note,) = bodies(stack["sqs"], stack["inbox"])
    assert "2 loaded, 2 failed" in note

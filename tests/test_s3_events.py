"""S3 events through SQS on moto's server: `chute s3 setup`, runs started by events, messages
deleted only after their run, duplicates harmless, batch markers, the dead-letter queue."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import STOCK_FILES, TOP_FILES, write
from fixtures_aws import upload_folder, use_landing

TABLE = "historical_stocks_data"


def waiting(aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


@pytest.fixture
def s3_project(stocks, aws, s3_bucket, cli):
    """The stocks project on s3://<bucket>/incoming, with its queue set up (files not yet uploaded)."""
    use_landing(stocks, f"s3://{s3_bucket}/incoming", "[s3]\nretry_after = 0\nmax_receive_count = 2\n")
    info = json.loads(cli("s3", "setup", "-p", stocks, "--json").output)
    return stocks, info


def test_setup_creates_queue_dead_letter_queue_and_notification(s3_project, s3_bucket, aws, cli):
    stocks, info = s3_project
    sqs = aws.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=info["queue_url"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == info["dead_letter_queue_arn"] and int(redrive["maxReceiveCount"]) == 2
    policy = json.loads(attrs["Policy"])["Statement"][0]
    assert policy["Principal"] == {"Service": "s3.amazonaws.com"} and policy["Resource"] == info["queue_arn"]
    assert info["queue_url"].endswith("/chute-stocks") and info["dead_letter_queue_url"].endswith("/chute-stocks-dlq")

    config = aws.client("s3").get_bucket_notification_configuration(Bucket=s3_bucket)
    (entry,) = config["QueueConfigurations"]
    assert entry["QueueArn"] == info["queue_arn"] and entry["Events"] == ["s3:ObjectCreated:*"]
    assert entry["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "incoming/"}] or \
        entry["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]

    # Idempotent, and another notification of the bucket is kept.
    other = sqs.create_queue(QueueName="someone-else")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config.pop("ResponseMetadata", None)
    config["QueueConfigurations"].append({"Id": "theirs", "QueueArn": other_arn, "Events": ["s3:ObjectRemoved:*"]})
    aws.client("s3").put_bucket_notification_configuration(Bucket=s3_bucket, NotificationConfiguration=config)
    again = json.loads(cli("s3", "setup", "-p", stocks, "--json").output)
    assert again["queue_url"] == info["queue_url"] and again["created"] == []
    ids = sorted(q["Id"] for q in aws.client("s3").get_bucket_notification_configuration(
        Bucket=s3_bucket)["QueueConfigurations"])
    assert ids == ["chute-stocks", "theirs"]


def test_setup_needs_an_s3_landing_zone(stocks, aws, cli):
    result = cli("s3", "setup", "-p", stocks, expect=2)
    assert "not s3://bucket/prefix" in result.output


def test_uploads_start_a_run_and_their_messages_are_deleted(s3_project, s3_bucket, aws, cli, query):
    stocks, info = s3_project
    upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
    assert waiting(aws, info["queue_url"]) > 0
    result = json.loads(cli("s3", "drain", "-p", stocks, "--json").output)
    (run,) = result["runs"]
    assert run["trigger"] == "s3" and run["files_loaded"] == TOP_FILES
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == run["rows_loaded"] > 0
    assert query("SELECT trigger FROM chute.runs") == [("s3",)]
    assert waiting(aws, info["queue_url"]) == 0


def test_duplicate_events_never_load_twice(s3_project, s3_bucket, aws, cli, query):
    stocks, info = s3_project
    sqs = aws.client("sqs")
    upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
    bodies = []
    while batch := sqs.receive_message(QueueUrl=info["queue_url"], MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in batch]
        for m in batch:  # put each back, and deliver it a second time too (S3 is at-least-once)
            sqs.change_message_visibility(QueueUrl=info["queue_url"], ReceiptHandle=m["ReceiptHandle"],
                                          VisibilityTimeout=0)
        if len(bodies) >= 12:
            break
    for body in bodies:
        sqs.send_message(QueueUrl=info["queue_url"], MessageBody=body)
    cli("s3", "drain", "-p", stocks)
    rows = query(f"SELECT count(*) FROM {TABLE}")[0][0]
    for body in bodies:  # and once more, after the load
        sqs.send_message(QueueUrl=info["queue_url"], MessageBody=body)
    second = json.loads(cli("s3", "drain", "-p", stocks, "--json").output)
    assert all(r["files_loaded"] == 0 for r in second["runs"])
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == rows
    assert query(f"SELECT count(*) FROM (SELECT company_name, stock_date FROM {TABLE} GROUP BY 1, 2) t")[0][0] == rows
    assert query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0] == TOP_FILES
    assert waiting(aws, info["queue_url"]) == 0


def test_test_event_and_encoded_keys(s3_project, s3_bucket, aws, cli, query):
    from chute.sources.s3_events import parse_event

    assert parse_event(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": s3_bucket})) == []
    stocks, info = s3_project
    name = sorted(p.name for p in (stocks / "landing").iterdir())[0]
    key = f"incoming/with space/{name}"
    aws.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=(stocks / "landing" / name).read_bytes())
    message = aws.client("sqs").receive_message(QueueUrl=info["queue_url"], MaxNumberOfMessages=10)["Messages"]
    objects = [(o.bucket, o.key) for m in message for o in parse_event(m["Body"])]
    assert (s3_bucket, key) in objects  # moto sends 'with+space': decoded with unquote_plus


MARKER = """
[project]
name = "batches"

[landing]
path = "s3://{bucket}/drop"
trigger = "marker"

[source.columns]
id = "bigint"

[tables.rows.columns]
id = "bigint"

[s3]
retry_after = 0
"""


def test_marker_starts_one_run_for_the_whole_batch(tmp_path, aws, s3_bucket, cli, query):
    project = tmp_path / "batches"
    write(project / "chute.toml", MARKER.format(bucket=s3_bucket))
    info = json.loads(cli("s3", "setup", "-p", project, "--json").output)
    s3 = aws.client("s3")
    for i in range(3):
        s3.put_object(Bucket=s3_bucket, Key=f"drop/2024-01-02/part-{i}.csv", Body=f"id\n{i}\n".encode())
    s3.put_object(Bucket=s3_bucket, Key="drop/2024-01-03/part-9.csv", Body=b"id\n9\n")
    before = json.loads(cli("s3", "drain", "-p", project, "--json").output)
    assert before["runs"] == [] and query("SELECT count(*) FROM pg_tables WHERE tablename = 'rows'")[0][0] == 0
    assert waiting(aws, info["queue_url"]) == 0  # plain objects of a marker zone wait for their marker

    s3.put_object(Bucket=s3_bucket, Key="drop/2024-01-02/.SUCCESS", Body=b"")
    after = json.loads(cli("s3", "drain", "-p", project, "--json").output)
    (run,) = after["runs"]
    assert run["trigger"] == "marker" and run["prefix"] == "2024-01-02/" and run["files_loaded"] == 3
    assert sorted(r[0] for r in query("SELECT id FROM rows")) == [0, 1, 2]  # not the other batch


def test_failing_event_goes_to_the_dead_letter_queue_and_comes_back(s3_project, s3_bucket, aws, cli, query):
    stocks, info = s3_project
    upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
    sent = STOCK_FILES  # one event per object (moto's s3:TestEvent is deleted at once)
    unreachable = "postgresql://chute@127.0.0.1:1/nowhere?connect_timeout=2"
    for _ in range(2):  # max_receive_count = 2 receipts that fail
        result = cli("s3", "drain", "-p", stocks, "--db", unreachable, "--json", expect=1)
        assert json.loads(result.output)["runs"][0]["status"] == "not run"
    cli("s3", "drain", "-p", stocks, "--db", unreachable, "--json", expect=None)  # SQS moves them on receipt
    assert waiting(aws, info["queue_url"]) == 0
    assert waiting(aws, info["dead_letter_queue_url"]) == sent
    listed = json.loads(cli("s3", "dead-letters", "-p", stocks, "--json", "--limit", "100").output)
    assert any(k.startswith(f"s3://{s3_bucket}/incoming/") for item in listed for k in item["keys"])

    moved = json.loads(cli("s3", "redrive", "-p", stocks, "--json").output)
    assert moved["moved"] == sent
    result = json.loads(cli("s3", "drain", "-p", stocks, "--json").output)
    assert sum(r["files_loaded"] for r in result["runs"]) == TOP_FILES
    assert waiting(aws, info["queue_url"]) == 0


def test_sqs_trigger_emits_and_deletes_after_done(s3_project, s3_bucket, aws):
    from chute.config.project import load_project
    from chute.watch.s3 import SqsTrigger

    stocks, info = s3_project
    got: list = []
    arrived = threading.Event()

    def emit(request):
        got.append(request)
        arrived.set()

    trigger = SqsTrigger(load_project(stocks), wait_seconds=1)
    trigger.start(emit)
    try:
        aws.client("s3").put_object(Bucket=s3_bucket, Key="incoming/x.us.txt", Body=b"Date,Open\n")
        assert arrived.wait(30)
    finally:
        trigger.stop()
    (request,) = got
    assert request.trigger == "s3" and request.names == ("x.us.txt",)
    assert waiting(aws, info["queue_url"]) == 1  # still there until the run says it is done
    request.done(True)
    assert waiting(aws, info["queue_url"]) == 0


def test_polling_fallback_sees_only_what_the_ledger_has_not(s3_project, s3_bucket, aws, cli, db_url):
    from chute.config.project import load_project
    from chute.watch.s3 import PollTrigger

    stocks, _ = s3_project
    upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
    poll = PollTrigger(load_project(stocks), db_url)
    assert len(poll.unseen()) == len(list((stocks / "landing").iterdir()))
    cli("s3", "drain", "-p", stocks)
    unseen = set(poll.unseen())  # files of other companies are never settled; the loaded ones are seen
    assert len(unseen) == len(list((stocks / "landing").iterdir())) - TOP_FILES
    aws.client("s3").put_object(Bucket=s3_bucket, Key="incoming/late.us.txt", Body=b"Date,Open\n")
    assert set(poll.unseen()) == unseen | {"late.us.txt"}


def loaded(query) -> int:
    import psycopg

    try:
        return query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0]
    except psycopg.errors.UndefinedTable:  # the service's first run has not created the ledger yet
        return 0


def test_watch_service_runs_on_s3_events(s3_project, s3_bucket, aws, db_url, query):
    """`chute watch`'s service on an S3 zone: an upload after start-up becomes an 's3' run and
    its message is deleted."""
    import time

    from chute.config.project import load_project
    from chute.watch.service import WatchService

    stocks, info = s3_project
    service = WatchService(load_project(stocks), db_url)
    assert {t.name for t in service.triggers} == {"s3", "s3-poll"}
    for t in service.triggers:
        if t.name == "s3":
            t.wait_seconds = 1  # stop() within a second
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        assert service.ready.wait(30)
        upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and loaded(query) < TOP_FILES:
            time.sleep(0.2)
        while time.monotonic() < deadline and waiting(aws, info["queue_url"]):
            time.sleep(0.2)
    finally:
        service.stop()
        thread.join(30)
    assert query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0] == TOP_FILES
    assert any("s3" in r[0] for r in query("SELECT trigger FROM chute.runs"))
    assert waiting(aws, info["queue_url"]) == 0


def test_one_filter_for_the_names_events_bring(stocks):
    """sources.s3_events.wanted, used by the watch trigger and the trigger Lambda alike: recursive,
    patterns on the file's own name, and no hidden or partial part."""
    from chute.config.project import load_project
    from chute.sources.s3_events import wanted

    landing = load_project(stocks).landing  # patterns *.us.txt, *.us.csv; recursive by default
    flat = landing.model_copy(update={"recursive": False})
    assert wanted("a.us.txt", landing) and wanted("a.us.txt", flat)
    assert wanted("day/a.us.txt", landing) and not wanted("day/a.us.txt", flat)
    assert not wanted("a.csv", landing) and not wanted("", landing)
    assert not wanted(".hidden/a.us.txt", landing) and not wanted("day/a.us.txt.part", landing)

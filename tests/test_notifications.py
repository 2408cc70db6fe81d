"""Notifications after each run, against real receivers: an aiosmtpd SMTP server, SNS on
moto's server (read through a subscribed SQS queue), and a local webhook receiver."""

from __future__ import annotations

import json
import socket
import logging

import pytest

from conftest import write
from fixtures_smtp import SMTP_PASSWORD, SMTP_USER

BASE = """
[project]
name = "prices"

[source.columns]
id = "bigint"
value = "double"

[tables.rows.columns]
id = "bigint"
value = "double"
"""

EMAIL = """
[[notify]]
kind = "email"
to = ["ops@example.com"]
from = "chute@example.com"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"
username_env = "CHUTE_SMTP_USER"
password_env = "CHUTE_SMTP_PASSWORD"
subject = "Jane_Doe_Pipeline_${{outcome}}"
{extra}
"""


@pytest.fixture
def prices(tmp_path, db_url, monkeypatch):
    """A one-table project with one good file; `add_bad()` lands a file that fails."""
    folder = tmp_path / "prices"
    write(folder / "chute.toml", BASE)
    write(folder / "landing" / "good.csv", "id,value\n1,1.5\n2,2.5\n")
    monkeypatch.setenv("CHUTE_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("CHUTE_SMTP_PASSWORD", SMTP_PASSWORD)
    return folder


def configure(folder, text: str) -> None:
    (folder / "chute.toml").write_text(BASE + text)


def add_bad(folder) -> None:
    write(folder / "landing" / "bad.csv", b"\x89PNG\r\n\x1a\n\x00\x00 not a CSV\n")  # fails whole


def test_email_on_success_has_the_seed_subject_and_the_facts(prices, smtp_sink, cli):
    configure(prices, EMAIL.format(port=smtp_sink.port, extra=""))
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    (message,) = smtp_sink.messages
    assert message["Subject"] == "Jane_Doe_Pipeline_Success"
    assert message["X-Envelope-To"] == "ops@example.com" and smtp_sink.logins == [SMTP_USER]
    body = message.get_payload()
    assert "Pipeline:  prices" in body and "Status:    succeeded" in body
    assert "Rows:      2 loaded, 0 rejected" in body and "1 loaded, 0 failed" in body
    assert f"Duration:  {summary['seconds']:.2f}s" in body
    assert summary["notifications"][0]["ok"] is True


def test_email_on_failure_says_failure_and_gives_the_first_errors(prices, smtp_sink, cli):
    configure(prices, EMAIL.format(port=smtp_sink.port, extra=""))
    add_bad(prices)
    cli("run", "-p", prices, "--json", expect=1)
    (message,) = smtp_sink.messages
    assert message["Subject"] == "Jane_Doe_Pipeline_Failure"
    body = message.get_payload()
    assert "Status:    failed" in body and "- bad.csv: " in body and "not CSV text" in body


def test_on_failure_only_is_quiet_on_success(prices, smtp_sink, cli):
    configure(prices, EMAIL.format(port=smtp_sink.port, extra='on = "failure"'))
    cli("run", "-p", prices)
    assert smtp_sink.messages == []
    add_bad(prices)
    cli("run", "-p", prices, expect=1)
    assert [m["Subject"] for m in smtp_sink.messages] == ["Jane_Doe_Pipeline_Failure"]


def test_custom_body_template(prices, smtp_sink, cli):
    configure(prices, EMAIL.format(port=smtp_sink.port,
                                   extra='body = "run $run_id of $pipeline: $rows_loaded rows, $$5 saved"'))
    cli("run", "-p", prices)
    assert smtp_sink.messages[0].get_payload().strip() == "run 1 of prices: 2 rows, $5 saved"


def test_unknown_template_field_is_a_config_error(prices, cli):
    configure(prices, EMAIL.format(port=25, extra='body = "rows: $rowz"'))
    result = cli("run", "-p", prices, expect=2)
    assert "unknown template field(s) rowz" in result.output


def test_failing_smtp_server_does_not_fail_the_run(prices, smtp_failing, cli, query, caplog):
    configure(prices, EMAIL.format(port=smtp_failing.port, extra="attempts = 2"))
    with caplog.at_level(logging.WARNING, logger="chute.notify"):
        summary = json.loads(cli("run", "-p", prices, "--json").output)
    assert summary["status"] == "succeeded" and query("SELECT count(*) FROM rows")[0][0] == 2
    (result,) = summary["notifications"]
    assert result["ok"] is False and result["attempts"] == 2 and "451" in result["error"]
    assert smtp_failing.attempts == 2  # retried, bounded
    assert "given up after 2 attempt(s)" in caplog.text


def test_unreachable_smtp_server_does_not_fail_the_run(prices, cli):
    from fixtures_aws import free_port

    configure(prices, EMAIL.format(port=free_port(), extra="attempts = 1"))
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    assert summary["status"] == "succeeded" and summary["notifications"][0]["ok"] is False


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_email_over_tls_logs_in_only_after_the_handshake(prices, smtp_starttls, smtp_ssl, tls, cli, monkeypatch):
    sink = smtp_starttls if tls == "starttls" else smtp_ssl
    monkeypatch.setenv("SSL_CERT_FILE", str(sink.ca_file))  # trust the test CA (OpenSSL's default paths)
    configure(prices, EMAIL.format(port=sink.port, extra="").replace('tls = "none"', f'tls = "{tls}"'))
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    assert summary["notifications"][0]["ok"] is True, summary["notifications"]
    (message,) = sink.messages
    assert message["Subject"] == "Jane_Doe_Pipeline_Success"
    assert sink.logins == [SMTP_USER]  # the server refuses AUTH before TLS, so this login was encrypted


def test_email_to_a_server_whose_certificate_is_not_trusted_is_not_sent(prices, smtp_starttls, cli, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    configure(prices, EMAIL.format(port=smtp_starttls.port, extra="attempts = 1").replace('tls = "none"',
                                                                                         'tls = "starttls"'))
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    assert summary["status"] == "succeeded"
    (result,) = summary["notifications"]
    assert result["ok"] is False and "CERTIFICATE_VERIFY_FAILED" in result["error"]
    assert smtp_starttls.messages == [] and smtp_starttls.logins == []  # no password sent to an unverified server
    assert SMTP_PASSWORD not in json.dumps(summary)


def test_sns_topic_receives_the_notification(prices, aws, cli):
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="pipeline-status")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    configure(prices, f'[[notify]]\nkind = "sns"\ntopic_arn = "{topic}"\nsubject = "Jane_Doe_Pipeline_${{outcome}}"\n')
    cli("run", "-p", prices)
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "Jane_Doe_Pipeline_Success"
    assert "Pipeline:  prices" in envelope["Message"] and "Rows:      2 loaded" in envelope["Message"]


def test_webhook_receives_slack_json(prices, webhook_sink, cli, monkeypatch):
    monkeypatch.setenv("CHUTE_HOOK_URL", webhook_sink.url + "/T0KEN-abc123")
    configure(prices, '[[notify]]\nkind = "webhook"\nurl_env = "CHUTE_HOOK_URL"\n')
    add_bad(prices)
    summary = json.loads(cli("run", "-p", prices, "--json", expect=1).output)
    ((path, headers, payload),) = webhook_sink.requests
    assert path == "/hook/T0KEN-abc123" and headers["Content-Type"] == "application/json"
    assert payload["text"].startswith("[chute] prices run 1 failed")
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "danger" and "bad.csv" in attachment["text"]
    assert {"title": "Rows loaded", "value": "2", "short": True} in attachment["fields"]
    assert "T0KEN" not in json.dumps(summary)  # the URL is a secret: not in the run's report


def test_webhook_error_is_retried_then_given_up(prices, webhook_sink, cli):
    webhook_sink.status = 500
    configure(prices, f'[[notify]]\nkind = "webhook"\nurl = "{webhook_sink.url}"\nattempts = 3\n')
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    assert summary["status"] == "succeeded"
    assert len(webhook_sink.requests) == 3 and summary["notifications"][0]["ok"] is False


def test_no_secret_in_any_notification(prices, smtp_sink, webhook_sink, cli, monkeypatch, caplog):
    """Passwords in URLs (e.g. a database URL in an error) and the values of the variables a
    [[notify]] entry names never reach a message, a log line or the run log."""
    from chute.notify.message import redact

    assert redact("connection to postgresql://loader:pa55w0rd@db:5432/x failed") == \
        "connection to postgresql://loader:***@db:5432/x failed"
    assert redact("host=db password=pa55w0rd user=x") == "host=db password=*** user=x"
    monkeypatch.setenv("CHUTE_HOOK_URL", "http://hooks:T0KEN-secret@127.0.0.1:1/never")  # unreachable: errors
    configure(prices, EMAIL.format(port=smtp_sink.port, extra="")
              + '[[notify]]\nkind = "webhook"\nurl_env = "CHUTE_HOOK_URL"\nattempts = 1\n'
              + f'[[notify]]\nkind = "webhook"\nurl = "{webhook_sink.url}"\n')
    # a file whose error message would carry the SMTP password
    write(prices / "landing" / "leak.csv", f"id,value\n1,{SMTP_PASSWORD}\n")
    with caplog.at_level(logging.DEBUG, logger="chute"):
        summary = json.loads(cli("run", "-p", prices, "--json", expect=1).output)
    seen = [m.as_string() for m in smtp_sink.messages] + [json.dumps(r[2]) for r in webhook_sink.requests]
    seen += [json.dumps(summary["notifications"]), caplog.text,
             (prices / "logs" / f"run-{summary['run_id']}.json").read_text()]
    assert len(smtp_sink.messages) == 1 and len(webhook_sink.requests) == 1
    for text in seen:
        assert SMTP_PASSWORD not in text and "T0KEN-secret" not in text


def test_run_log_records_the_notifications_sent(prices, webhook_sink, cli):
    configure(prices, f'[[notify]]\nkind = "webhook"\nurl = "{webhook_sink.url}"\n')
    summary = json.loads(cli("run", "-p", prices, "--json").output)
    logged = json.loads((prices / "logs" / f"run-{summary['run_id']}.json").read_text())
    assert [n["ok"] for n in logged["notifications"]] == [True] and len(webhook_sink.requests) == 1


def test_a_run_that_cannot_start_still_notifies(prices, webhook_sink, cli):
    """The database is unreachable: no run row, no run log, but the failure is told."""
    configure(prices, f'[[notify]]\nkind = "webhook"\nurl = "{webhook_sink.url}"\nattempts = 1\n')
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # exit status 3: the database is unavailable (issue 25's exit code table; it was 2)
    result = cli("run", "-p", prices, "--db", f"postgresql://chute:pw@127.0.0.1:{port}/nowhere", expect=3)
    assert "cannot connect" in result.output
    ((_, _, payload),) = webhook_sink.requests
    assert payload["text"].startswith("[chute] prices run - failed")
    text = json.dumps(payload)
    assert "cannot connect" in text and "pw@" not in text  # the password is not told

"""A real SMTP server for the tests: aiosmtpd on a free loopback port.

`smtp_sink` accepts every message (and any AUTH login whose password is SMTP_PASSWORD) and
keeps them in `.messages` as email.message.Message objects. `smtp_failing` answers every
message with a temporary failure, so senders see an SMTP error.
"""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass, field

import pytest

from fixtures_aws import free_port

SMTP_USER = "chute-bot"
SMTP_PASSWORD = "s3cr3t-Smtp-Pa55"


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list = field(default_factory=list)
    attempts: int = 0  # DATA commands seen (sent or refused)
    logins: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, sink: SmtpSink, refuse: bool):
        self.sink = sink
        self.refuse = refuse

    async def handle_DATA(self, server, session, envelope):
        with self.sink._lock:
            self.sink.attempts += 1
        if self.refuse:
            return "451 4.3.0 mailbox temporarily unavailable"
        message = email.message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.sink._lock:
            self.sink.messages.append(message)
        return "250 OK"


def _authenticator(sink: SmtpSink):
    from aiosmtpd.smtp import AuthResult

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            sink.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)
    return check


def _serve(refuse: bool):
    from aiosmtpd.controller import Controller

    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(_Handler(sink, refuse), hostname=sink.host, port=sink.port,
                            authenticator=_authenticator(sink), auth_require_tls=False)
    controller.start()
    return sink, controller


@pytest.fixture
def smtp_sink():
    sink, controller = _serve(refuse=False)
    yield sink
    controller.stop()


@pytest.fixture
def smtp_failing():
    sink, controller = _serve(refuse=True)
    yield sink
    controller.stop()

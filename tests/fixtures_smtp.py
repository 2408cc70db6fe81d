"""A real SMTP server for the tests: aiosmtpd on a free loopback port.

`smtp_sink` accepts every message (and any AUTH login whose password is SMTP_PASSWORD) and
keeps them in `.messages` as email.message.Message objects. `smtp_failing` answers every
message with a temporary failure, so senders see an SMTP error. `smtp_starttls` and
`smtp_ssl` speak TLS (STARTTLS required before AUTH; implicit TLS) with a certificate for
127.0.0.1 signed by a throwaway CA, whose file is `.ca_file`.
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


def _serve(refuse: bool, tls: str = "none", context=None):
    from aiosmtpd.controller import Controller

    sink = SmtpSink("127.0.0.1", free_port())
    kwargs = {"tls_context": context, "require_starttls": True} if tls == "starttls" else \
        {"ssl_context": context} if tls == "ssl" else {}
    # With implicit TLS every byte is encrypted from the start; aiosmtpd's auth_require_tls only
    # knows about STARTTLS, so it applies to that mode alone.
    controller = Controller(_Handler(sink, refuse), hostname=sink.host, port=sink.port,
                            authenticator=_authenticator(sink), auth_require_tls=tls == "starttls", **kwargs)
    controller.start()
    return sink, controller


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory):
    """(CA file, server context): a CA and a server certificate for 127.0.0.1 it signed."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key, issuer: str, signer, ca: bool):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("chute test CA", ca_key, "chute test CA", ca_key, True)
    server = certificate("127.0.0.1", server_key, "chute test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return folder / "ca.pem", context


def _tls_sink(tls_certificate, tls: str):
    ca_file, context = tls_certificate
    sink, controller = _serve(refuse=False, tls=tls, context=context)
    sink.ca_file = ca_file
    yield sink
    controller.stop()


@pytest.fixture
def smtp_starttls(tls_certificate):
    yield from _tls_sink(tls_certificate, "starttls")


@pytest.fixture
def smtp_ssl(tls_certificate):
    yield from _tls_sink(tls_certificate, "ssl")


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

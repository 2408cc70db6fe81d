"""Email over SMTP: STARTTLS (default), implicit TLS (ssl) or plain; login from env variables."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from email.message import EmailMessage

from chute.errors import ConfigError

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def credentials(cfg) -> tuple[str, str] | None:
    if not (cfg.username_env or cfg.password_env):
        return None
    missing = [n for n in (cfg.username_env, cfg.password_env) if not n or not os.environ.get(n)]
    if missing:
        raise ConfigError(f"email notification: environment variable(s) {', '.join(map(str, missing))} not set "
                          "(username_env and password_env name them)")
    return os.environ[cfg.username_env], os.environ[cfg.password_env]


def send(cfg, subject: str, body: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = cfg.sender or f"chute@{socket.gethostname()}"
    message["To"] = ", ".join(cfg.to)
    message.set_content(body)
    port = cfg.smtp_port or DEFAULT_PORTS[cfg.tls]
    login = credentials(cfg)
    context = ssl.create_default_context()
    if cfg.tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, port, timeout=cfg.timeout, context=context)
    else:
        smtp = smtplib.SMTP(cfg.smtp_host, port, timeout=cfg.timeout)
    with smtp:
        if cfg.tls == "starttls":
            smtp.starttls(context=context)
        if login:
            smtp.login(*login)
        smtp.send_message(message)

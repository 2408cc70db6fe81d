"""Exceptions chute raises on purpose.

    ChuteError                  anything chute reports to a user (CLI exit status 2 unless noted)
    ├── ConfigError             chute.toml or a command-line option is wrong
    ├── PipelineError           the node graph is miswired (missing input, cycle, duplicate output)
    ├── DatabaseError           PostgreSQL is unreachable or refused a statement (field: sqlstate)
    │   ├── EmbeddedDatabaseError   the local cluster could not be set up or started
    │   ├── DatabaseRefused         reached, and refused the connection for good: wrong password
    │   │                           or user, unknown database (terminal: never retried)
    │   └── DatabaseUnavailable     cannot connect / the connection dropped, also mid-run (also a
    │                               TransientError; CLI exit status 3; chute watch waits for it)
    ├── TransientError          worth retrying with backoff: unreachable, throttled, timed out
    │   └── RunInProgress       another run of the same pipeline holds the lock (replace mode)
    ├── LandingZoneError        the landing zone cannot be listed or written (no bucket, access denied)
    │   └── LandingZoneUnavailable  S3 unreachable or throttling (also a TransientError)
    └── FileError               one file could not be read, transformed or loaded;
        ├── ReadError           the bytes are not the declared format (terminal: retrying won't help)
        └── TransformError      a node or the final cast to the table's types failed

FileError is caught per file by the runner: the file is recorded as `failed` with the
message and the other files go on.

Code decides on an error's class and fields, never on its message (which is for people).
"""

from __future__ import annotations

import shlex
from contextlib import contextmanager
from typing import Iterator


class ChuteError(Exception):
    """Base class: its message is meant for a person and is printed as-is."""


class ConfigError(ChuteError):
    pass


class PipelineError(ChuteError):
    pass


class DatabaseError(ChuteError):
    """PostgreSQL is unreachable or refused a statement. `sqlstate` is the SQLSTATE code the
    server sent, or None: none was sent (unreachable), or libpq did not hand it over (a connection
    refused during start-up: see chute.retry.refused_for_good)."""

    def __init__(self, message: str = "", *, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class EmbeddedDatabaseError(DatabaseError):
    pass


class TransientError(ChuteError):
    """The same call may succeed later (see chute.retry): never bad data or bad config."""


class DatabaseRefused(DatabaseError):
    """The server was reached and refused this connection for a reason that will not fix itself:
    a wrong password or user, an unknown database, no right to connect. Fix the URL or the grants."""


class DatabaseUnavailable(DatabaseError, TransientError):
    """Cannot connect for now (refused, timed out, server starting or shutting down), or the
    connection dropped: worth a retry."""


class RunInProgress(TransientError):
    pass


class LandingZoneError(ChuteError):
    pass


class LandingZoneUnavailable(LandingZoneError, TransientError):
    pass


class FileError(ChuteError):
    pass


class ReadError(FileError):
    pass


class TransformError(FileError):
    pass


# -- naming the setting that fixes a problem ---------------------------------------------------
# Messages say which setting to change. A project sets them in chute.toml ("[source] encoding");
# `chute load` has no chute.toml, only its options ("--encoding"), so it names those instead.
_options: dict[str, str] = {}


def setting(key: str, value: str | None = None, section: str = "source") -> str:
    """How a message names setting `key` of chute.toml's [section] (set to `value`, if given)
    for the user at hand."""
    if key in _options:  # a value quoted for the shell: --delimiter ';'
        return _options[key] + (f" {shlex.quote(value)}" if value is not None else "")
    return f"[{section}] {key}" + (f" = {value!r}" if value is not None else "")


def settable(key: str) -> bool:
    """Whether the user at hand can set `key`: a project can set any; a command only its options."""
    return not _options or key in _options


@contextmanager
def options_named(options: dict[str, str]) -> Iterator[None]:
    """Within this block, messages name command-line options: {"encoding": "--encoding", ...}."""
    saved = dict(_options)
    _options.clear()
    _options.update(options)
    try:
        yield
    finally:
        _options.clear()
        _options.update(saved)

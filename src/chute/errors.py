"""Exceptions chute raises on purpose.

    ChuteError                  anything chute reports to a user (CLI exit status 2 unless noted)
    ├── ConfigError             chute.toml or a command-line option is wrong
    ├── PipelineError           the node graph is miswired (missing input, cycle, duplicate output)
    ├── DatabaseError           PostgreSQL is unreachable or refused a statement
    │   ├── EmbeddedDatabaseError   the local cluster could not be set up or started
    │   └── DatabaseUnavailable     cannot connect / the connection dropped (also a TransientError)
    ├── TransientError          worth retrying with backoff: unreachable, throttled, timed out
    │   └── RunInProgress       another run of the same pipeline holds the lock (replace mode)
    ├── LandingZoneError        the landing zone cannot be listed or written (no bucket, access denied)
    │   └── LandingZoneUnavailable  S3 unreachable or throttling (also a TransientError)
    └── FileError               one file could not be read, transformed or loaded;
        ├── ReadError           the bytes are not the declared format (terminal: retrying won't help)
        └── TransformError      a node or the final cast to the table's types failed

FileError is caught per file by the runner: the file is recorded as `failed` with the
message and the other files go on.
"""

from __future__ import annotations


class ChuteError(Exception):
    """Base class: its message is meant for a person and is printed as-is."""


class ConfigError(ChuteError):
    pass


class PipelineError(ChuteError):
    pass


class DatabaseError(ChuteError):
    pass


class EmbeddedDatabaseError(DatabaseError):
    pass


class TransientError(ChuteError):
    """The same call may succeed later (see chute.retry): never bad data or bad config."""


class DatabaseUnavailable(DatabaseError, TransientError):
    pass


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

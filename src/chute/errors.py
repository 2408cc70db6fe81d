"""Exceptions chute raises on purpose.

    ChuteError                  anything chute reports to a user (CLI exit status 2 unless noted)
    ├── ConfigError             chute.toml or a command-line option is wrong
    ├── PipelineError           the node graph is miswired (missing input, cycle, duplicate output)
    ├── DatabaseError           PostgreSQL is unreachable or refused a statement
    │   └── EmbeddedDatabaseError   the local cluster could not be set up or started
    ├── RunInProgress           another run of the same pipeline holds the lock
    ├── LandingZoneError        the landing zone cannot be listed or written (S3 unreachable, access denied)
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


class RunInProgress(ChuteError):
    pass


class LandingZoneError(ChuteError):
    pass


class FileError(ChuteError):
    pass


class ReadError(FileError):
    pass


class TransformError(FileError):
    pass

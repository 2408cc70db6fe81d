"""Retries: transient errors are tried again with exponential backoff and jitter, a bounded
number of times; terminal errors (bad data, bad configuration) are not retried at all.

Built on tenacity (well-kept, small): `retrying(call, policy)` runs `call` until it returns,
raises a terminal error, or runs out of attempts (then the last error is raised).

What counts as transient (`is_transient`: the one list, for `chute run`/`watch` and the AWS
Lambda handlers alike):
- chute's TransientError (DatabaseUnavailable: cannot connect, connection dropped);
- psycopg OperationalError / InterfaceError raised past chute (connection lost mid-run),
  unless PostgreSQL refused the connection for good (`refused_for_good`: wrong password or
  user, unknown database) - decided on the error's fields, never on its message;
- OS-level ConnectionError and TimeoutError (socket.timeout);
- botocore ClientErrors with a throttling or 5xx code (S3 SlowDown, Throttling, 503), and
  botocore connection / read-timeout errors - recognised by name, so boto3 is not required.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from tenacity import (RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential,
                      wait_random)

from chute.errors import ChuteError, TransientError

log = logging.getLogger("chute.retry")
T = TypeVar("T")

_THROTTLING = {"Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded", "TooManyRequestsException",
               "ProvisionedThroughputExceededException", "RequestTimeout", "RequestTimeoutException",
               "ServiceUnavailable", "InternalError"}
# botocore's, matched on the exception's classes: ConnectionError is the base of EndpointConnectionError,
# ConnectTimeoutError, ProxyConnectionError and SSLError; the others break a response half-way.
_BOTOCORE_TRANSIENT = {"ConnectionError", "ReadTimeoutError", "ConnectionClosedError", "ResponseStreamingError"}
# SQLSTATE classes and codes that refuse a connection for good: 28 invalid authorization (wrong
# password, unknown role, pg_hba.conf rejects), 3D000 unknown database, 42501 no CONNECT privilege.
_REFUSED_SQLSTATES = ("28", "3D000", "42501")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    initial: float = 0.5  # seconds before the first retry; doubles each time
    maximum: float = 30.0  # the longest wait
    jitter: float = 0.5  # up to this many random seconds added to each wait

    @classmethod
    def of(cls, watch) -> "RetryPolicy":
        """From a project's [watch] section."""
        return cls(watch.retry_attempts, watch.retry_initial, watch.retry_max, min(watch.retry_initial, 1.0))


def refused_for_good(exc: psycopg.Error) -> bool:
    """Whether PostgreSQL refused the connection for a reason a retry won't fix: a wrong password
    or user, an unknown database, no right to connect."""
    if exc.sqlstate:
        return exc.sqlstate.startswith(_REFUSED_SQLSTATES)
    # A connection refused during start-up carries no SQLSTATE: psycopg 3 (3.3 with libpq 18,
    # checked against a real server) leaves sqlstate, diag.sqlstate and pgresult None for a wrong
    # password, an unknown database and a closed port alike - libpq keeps the server's error
    # fields to itself. What it does expose (exc.pgconn, a snapshot of the failed connection) is
    # whether the server asked for a password (PQconnectionUsedPassword / NeedsPassword). A server
    # that asked was up and taking connections, checked who we are, and said no: wrong password
    # or user, unknown database. One that is down, starting up, shutting down or has no free
    # connection ("too many clients") refuses before asking, and is retried. Not told apart, for
    # want of a code: the connection limits checked after the password (53300: a role's or a
    # database's own limit, the slots reserved for superusers) are not retried, and an unknown
    # database under trust or peer authentication (no password asked) is.
    pgconn = exc.pgconn
    return (pgconn is not None and not pgconn.server_version  # never got as far as a session
            and bool(pgconn.used_password or pgconn.needs_password))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, ChuteError):
        return False  # chute already judged it: bad config, bad data, a refused statement or connection
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return not refused_for_good(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__
    if any(c.__name__ in _BOTOCORE_TRANSIENT and c.__module__.startswith("botocore") for c in type(exc).__mro__):
        return True
    response = getattr(exc, "response", None)
    if name == "ClientError" and isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in _THROTTLING or status in (429, 500, 502, 503, 504)
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_transient(cause)


def retrying(call: Callable[[], T], policy: RetryPolicy, *, what: str = "call",
             stop: threading.Event | None = None,
             on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Run `call`, retrying transient errors per `policy`. A set `stop` event ends the waiting
    early (the last error is raised)."""

    last: list[BaseException] = []

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            last[:] = [exc]
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d of %d), retrying in %.1fs: %s", what, state.attempt_number,
                    policy.attempts, wait, exc)
        if on_retry and exc is not None:
            on_retry(state.attempt_number, exc, wait)

    def sleep(seconds: float) -> None:
        if stop is not None:
            if stop.wait(seconds):
                raise _Stopped()
        else:
            threading.Event().wait(seconds)

    def keep_going(exc: BaseException) -> bool:
        return is_transient(exc) and not (stop is not None and stop.is_set())

    retryer = Retrying(stop=stop_after_attempt(policy.attempts),
                       wait=wait_exponential(multiplier=policy.initial, max=policy.maximum) + wait_random(0, policy.jitter),
                       retry=retry_if_exception(keep_going), reraise=True, before_sleep=before_sleep, sleep=sleep)
    try:
        return retryer(call)
    except _Stopped:
        raise (last[0] if last else TransientError(f"{what}: stopped while waiting to retry")) from None


class _Stopped(Exception):
    pass

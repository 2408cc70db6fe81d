"""Retries: transient errors are tried again with exponential backoff and jitter, a bounded
number of times; terminal errors (bad data, bad configuration) are not retried at all.

Built on tenacity (well-kept, small): `retrying(call, policy)` runs `call` until it returns,
raises a terminal error, or runs out of attempts (then the last error is raised).

What counts as transient (`is_transient`):
- chute's TransientError (DatabaseUnavailable: cannot connect, connection dropped);
- psycopg OperationalError / InterfaceError raised past chute (connection lost mid-run),
  unless it is an authentication or unknown-database error;
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
_BOTOCORE_TRANSIENT = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}


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


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, ChuteError):
        return False  # chute already judged it: bad config, bad data, a refused statement
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        text = str(exc).lower()
        return not ("authentication failed" in text or "does not exist" in text)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__
    if name in _BOTOCORE_TRANSIENT:
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

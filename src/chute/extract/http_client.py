"""Paginated JSON over HTTP: the request side of the `http` extraction kind.

    HttpFetcher(options).records(url, params) -> iterator of pages (lists of dict records)

What it does for one request sequence:

- pagination, three styles: "cursor" (the next cursor is in the response body at
  `cursor_path`, sent back as the `cursor_param` query parameter), "page" (page numbers in
  `page_param`, from `start_page`, until an empty or short page), "link" (RFC 8288 `Link`
  header with rel="next", as GitHub's API does), or "none" (one request);
- the records of a page are found at `records` (a dotted path into the JSON body; empty:
  the body is the list itself);
- rate limiting: at most `rate_limit` requests per second, and a 429 answer's Retry-After is
  honoured before the next request (capped by `max_retry_after`);
- transient failures (5xx, 408, 429, timeouts, connection errors) are retried with
  exponential backoff and jitter, a bounded number of times (chute.retry, tenacity);
- terminal failures (other 4xx, a body that is not JSON, records that are not a list of
  objects) raise HttpError at once, naming the URL and the status.

Header values named in `headers_env` are read from the environment, never from chute.toml,
and are never logged (only the URL, the status and the page count are).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from chute.errors import ChuteError, ConfigError, TransientError
from chute.retry import RetryPolicy, retrying

log = logging.getLogger("chute.extract.http")

_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class HttpError(ChuteError):
    """The API answered something retrying will not fix (a 4xx, a body that is not JSON)."""


class HttpUnavailable(TransientError):
    """A 5xx, a 429, a timeout or a dropped connection: worth trying again."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Pagination:
    style: str = "none"  # none | cursor | page | link
    cursor_param: str = "cursor"  # cursor: the query parameter that carries the cursor
    cursor_path: str = "next_cursor"  # cursor: where the next cursor is in the body (dotted)
    page_param: str = "page"  # page: the query parameter of the page number
    start_page: int = 1
    page_size_param: str | None = None  # page/cursor: a query parameter asking for page_size records
    page_size: int | None = None


@dataclass(frozen=True)
class HttpOptions:
    pagination: Pagination = field(default_factory=Pagination)
    records: str = ""  # dotted path to the list of records in the body; "" = the body is the list
    headers: dict[str, str] = field(default_factory=dict)  # sent as-is (not secret)
    headers_env: dict[str, str] = field(default_factory=dict)  # header -> environment variable holding its value
    rate_limit: float | None = None  # requests per second at most
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_retry_after: float = 300.0  # a 429 asking to wait longer than this fails the extraction
    max_pages: int = 1_000_000  # a guard against an API whose cursor never ends


def dig(body: Any, path: str) -> Any:
    """The value at a dotted path ('data.items'); None when a step is missing."""
    value = body
    for step in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


class RateLimiter:
    """At most `rate` requests per second (evenly spaced), and nothing before `not_before`."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)

    def hold_off(self, seconds: float) -> None:
        """The server asked us to wait (429 Retry-After)."""
        with self.lock:
            self.next_at = max(self.next_at, time.monotonic() + seconds)


def _retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def resolve_headers(options: HttpOptions) -> dict[str, str]:
    headers = {"Accept": "application/json", **options.headers}
    for header, var in options.headers_env.items():
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"header {header!r} comes from ${var}, which is not set")
        headers[header] = value
    return headers


class HttpFetcher:
    """One client (a connection pool) for an extraction; `pages` may be called many times
    (once per for_each row), all sharing the rate limit."""

    def __init__(self, options: HttpOptions, *, stop: threading.Event | None = None):
        self.options = options
        self.limiter = RateLimiter(options.rate_limit)
        self.stop = stop
        self.requests = 0
        self.client = httpx.Client(headers=resolve_headers(options), timeout=options.timeout,
                                   follow_redirects=True)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "HttpFetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- a request sequence ----------------------------------------------------------------
    def pages(self, url: str, params: dict[str, Any] | None = None) -> Iterator[list[dict]]:
        """The records of each page, in order, following the pagination to its end."""
        p = self.options.pagination
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if p.page_size_param and p.page_size:
            params[p.page_size_param] = p.page_size
        page = p.start_page
        next_url: str | None = url
        for number in range(self.options.max_pages):
            request_params = dict(params)
            if p.style == "page":
                request_params[p.page_param] = page
            body, response = self._get_json(next_url, request_params)
            records = self._records(body, response)
            yield records
            if p.style == "cursor":
                cursor = dig(body, p.cursor_path)
                if cursor in (None, "") or not records:
                    return
                params[p.cursor_param] = cursor
            elif p.style == "page":
                if not records or (p.page_size and len(records) < p.page_size):
                    return
                page += 1
            elif p.style == "link":
                link = response.links.get("next", {}).get("url")
                if not link:
                    return
                next_url = str(response.url.join(link))
                params = {}  # the next link carries its own query
            else:
                return
        raise HttpError(f"GET {url}: still more pages after {self.options.max_pages} (raise max_pages?)")

    def _records(self, body: Any, response: httpx.Response) -> list[dict]:
        path = self.options.records
        records = dig(body, path) if path else body
        where = f"at {path!r}" if path else "(the whole body)"
        if records is None and path:
            return []  # a page without the key: nothing on it
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise HttpError(f"GET {_show(response.url)}: expected a list of JSON objects {where}, "
                            f"got {type(records).__name__} (set records = \"path.to.list\")")
        return records

    # -- one request, with retries ---------------------------------------------------------
    def _get_json(self, url: str, params: dict[str, Any]) -> tuple[Any, httpx.Response]:
        def attempt() -> tuple[Any, httpx.Response]:
            return self._attempt(url, params)

        return retrying(attempt, self.options.retry, what=f"GET {_show(url)}", stop=self.stop)

    def _attempt(self, url: str, params: dict[str, Any]) -> tuple[Any, httpx.Response]:
        self.limiter.wait()
        self.requests += 1
        try:
            # params=None, not {}: httpx replaces a URL's own query (a Link header's) with {}
            response = self.client.get(url, params=params or None)
        except httpx.TimeoutException as exc:
            raise HttpUnavailable(f"GET {_show(url)}: timed out after {self.options.timeout:g}s "
                                  f"({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise HttpUnavailable(f"GET {_show(url)}: connection failed: {exc}") from None
        shown = _show(response.url)
        status = response.status_code
        log.debug("GET %s -> %d", shown, status)
        if status in _TRANSIENT_STATUS:
            wait = _retry_after(response.headers.get("Retry-After"))
            if wait is not None:
                if wait > self.options.max_retry_after:
                    raise HttpError(f"GET {shown}: HTTP {status}, the server asks to wait {wait:.0f}s "
                                    f"(more than max_retry_after = {self.options.max_retry_after:g})")
                self.limiter.hold_off(wait)
            raise HttpUnavailable(f"GET {shown}: HTTP {status} {response.reason_phrase}{_excerpt(response)}",
                                  retry_after=wait)
        if status >= 400:
            raise HttpError(f"GET {shown}: HTTP {status} {response.reason_phrase}{_excerpt(response)}")
        try:
            return json.loads(response.content), response
        except ValueError as exc:
            raise HttpError(f"GET {shown}: HTTP {status} but the body is not JSON ({exc}){_excerpt(response)}") \
                from None


def _show(url: Any) -> str:
    """A URL for messages and logs: without user:password, if any were in it."""
    u = httpx.URL(str(url))
    return str(u.copy_with(username=None, password=None)) if u.userinfo else str(u)


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""

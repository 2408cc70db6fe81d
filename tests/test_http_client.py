"""The HTTP client of the `http` extraction: pagination styles, records path, rate limit,
429 + Retry-After, retries of 5xx and dropped connections, terminal errors, secret headers.
Against a real local HTTP server (tests/fixtures_api.py)."""

from __future__ import annotations

import logging
import time

import pytest

from chute.errors import ConfigError
from chute.extract.http_client import HttpError, HttpFetcher, HttpOptions, HttpUnavailable, Pagination
from chute.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, jitter=0.01)
ITEMS = [{"id": i, "name": f"item {i}"} for i in range(1, 11)]


def fetch_all(options: HttpOptions, url: str, params=None) -> list[dict]:
    with HttpFetcher(options) as fetcher:
        return [r for page in fetcher.pages(url, params) for r in page]


def test_cursor_pagination_follows_the_cursor_in_the_body(api_server):
    def items(query, headers):
        start = int(query.get("after", 0))
        page = ITEMS[start:start + 3]
        nxt = str(start + 3) if start + 3 < len(ITEMS) else None
        return 200, {}, {"data": {"items": page}, "meta": {"next": nxt}}

    api_server.route("/items", items)
    options = HttpOptions(Pagination("cursor", cursor_param="after", cursor_path="meta.next"), records="data.items",
                          retry=FAST)
    assert fetch_all(options, api_server.url + "/items") == ITEMS
    assert [r[2].get("after") for r in api_server.hits("/items")] == [None, "3", "6", "9"]


def test_page_numbers_until_a_short_page(api_server):
    def items(query, headers):
        page, size = int(query["page"]), int(query["per_page"])
        return 200, {}, ITEMS[(page - 1) * size: page * size]

    api_server.route("/items", items)
    options = HttpOptions(Pagination("page", page_size_param="per_page", page_size=4), retry=FAST)
    assert fetch_all(options, api_server.url + "/items", {"q": "x"}) == ITEMS
    assert [r[2]["page"] for r in api_server.hits("/items")] == ["1", "2", "3"]
    assert all(r[2]["q"] == "x" for r in api_server.hits("/items"))


def test_page_numbers_until_an_empty_page_without_a_page_size(api_server):
    api_server.route("/items", lambda q, h: (200, {}, {"rows": ITEMS[(int(q["p"]) - 1) * 5: int(q["p"]) * 5]}))
    options = HttpOptions(Pagination("page", page_param="p"), records="rows", retry=FAST)
    assert fetch_all(options, api_server.url + "/items") == ITEMS
    assert len(api_server.hits("/items")) == 3  # two full pages, then an empty one


def test_link_header_rel_next(api_server):
    def items(query, headers):
        start = int(query.get("start", 0))
        links = {}
        if start + 4 < len(ITEMS):  # a relative link, and another rel before next
            links["Link"] = f'</items?start={start - 4}>; rel="prev", </items?start={start + 4}>; rel="next"'
        return 200, links, ITEMS[start:start + 4]

    api_server.route("/items", items)
    assert fetch_all(HttpOptions(Pagination("link"), retry=FAST), api_server.url + "/items") == ITEMS
    assert len(api_server.hits("/items")) == 3


def test_rate_limit_spaces_the_requests(api_server):
    api_server.route("/items", lambda q, h: (200, {}, ITEMS[int(q["page"]) - 1: int(q["page"])]))
    options = HttpOptions(Pagination("page", page_size=1), rate_limit=20, retry=FAST)
    began = time.monotonic()
    assert len(fetch_all(options, api_server.url + "/items")) == len(ITEMS)
    took = time.monotonic() - began
    requests = len(api_server.hits("/items"))  # 10 pages of one, then an empty one
    # 20 per second: the limiter starts request n no sooner than (n - 1) / 20 s after the first.
    assert took >= (requests - 1) / 20


def test_429_with_retry_after_is_honoured_then_retried(api_server):
    answers = iter([(429, {"Retry-After": "1"}, {"error": "slow down"})])

    def items(query, headers):
        return next(answers, (200, {}, ITEMS))

    api_server.route("/items", items)
    assert fetch_all(HttpOptions(retry=FAST), api_server.url + "/items") == ITEMS
    first, second = [r[0] for r in api_server.hits("/items")]
    assert second - first >= 1.0  # the server asked for one second; backoff alone is 0.01 s


def test_429_asking_for_too_long_fails_clearly(api_server):
    api_server.route("/items", lambda q, h: (429, {"Retry-After": "3600"}, {}))
    with pytest.raises(HttpError, match=r"/items: HTTP 429.*3600s.*max_retry_after"):
        fetch_all(HttpOptions(retry=FAST, max_retry_after=60), api_server.url + "/items")


def test_5xx_is_retried_with_backoff_until_it_works(api_server):
    answers = iter([(500, {}, {"error": "boom"}), (503, {}, b"")])
    api_server.route("/items", lambda q, h: next(answers, (200, {}, ITEMS)))
    assert fetch_all(HttpOptions(retry=FAST), api_server.url + "/items") == ITEMS
    assert len(api_server.hits("/items")) == 3


def test_5xx_that_persists_fails_after_the_bounded_attempts(api_server):
    api_server.route("/items", lambda q, h: (500, {}, {"error": "database on fire"}))
    with pytest.raises(HttpUnavailable, match=r"GET http://127\.0\.0\.1:\d+/items: HTTP 500.*database on fire"):
        fetch_all(HttpOptions(retry=FAST), api_server.url + "/items")
    assert len(api_server.hits("/items")) == FAST.attempts


def test_connection_refused_is_transient_and_bounded():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HttpUnavailable, match="connection failed"):
        fetch_all(HttpOptions(retry=FAST), f"http://127.0.0.1:{port}/items")


def test_4xx_is_terminal_and_names_url_and_status(api_server):
    api_server.route("/items", lambda q, h: (404, {}, {"error": "no such branch"}))
    with pytest.raises(HttpError, match=r"GET http://127\.0\.0\.1:\d+/items\?x=1: HTTP 404 Not Found.*no such branch"):
        fetch_all(HttpOptions(retry=FAST), api_server.url + "/items", {"x": 1})
    assert len(api_server.hits("/items")) == 1  # not retried


def test_invalid_json_is_terminal(api_server):
    api_server.route("/items", lambda q, h: (200, {}, b"<html>oops</html>"))
    with pytest.raises(HttpError, match=r"/items: HTTP 200 but the body is not JSON"):
        fetch_all(HttpOptions(retry=FAST), api_server.url + "/items")
    assert len(api_server.hits("/items")) == 1


def test_records_path_that_is_not_a_list_is_terminal(api_server):
    api_server.route("/items", lambda q, h: (200, {}, {"data": {"id": 1}}))
    with pytest.raises(HttpError, match=r"expected a list of JSON objects at 'data'"):
        fetch_all(HttpOptions(records="data", retry=FAST), api_server.url + "/items")


def test_secret_headers_come_from_the_environment_and_are_never_logged(api_server, monkeypatch, caplog):
    monkeypatch.setenv("RETAIL_TOKEN", "Bearer s3cr3t-value")
    api_server.route("/items", lambda q, h: (200, {}, ITEMS) if h.get("Authorization") == "Bearer s3cr3t-value"
                     else (401, {}, {"error": "who are you"}))
    options = HttpOptions(headers={"X-Client": "chute"}, headers_env={"Authorization": "RETAIL_TOKEN"}, retry=FAST)
    with caplog.at_level(logging.DEBUG, logger="chute"):
        assert fetch_all(options, api_server.url + "/items") == ITEMS
    assert api_server.requests[0][3]["X-Client"] == "chute"
    assert "s3cr3t" not in caplog.text


def test_missing_secret_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("RETAIL_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"Authorization.*\$RETAIL_TOKEN.*not set"):
        HttpFetcher(HttpOptions(headers_env={"Authorization": "RETAIL_TOKEN"}))

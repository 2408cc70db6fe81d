"""A tiny local HTTP server that records what is POSTed to it (a webhook receiver)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free loopback port, answering on a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class WebhookSink:
    url: str
    requests: list = field(default_factory=list)  # (path, headers dict, parsed JSON or raw text)
    status: int = 200  # what to answer; set to 500 to make the sender retry


@pytest.fixture
def webhook_sink():
    sink = WebhookSink("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                payload = json.loads(body)
            except ValueError:
                payload = body
            sink.requests.append((self.path, dict(self.headers), payload))
            self.send_response(sink.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output clean
            pass

    with serving(Handler) as url:
        sink.url = url + "/hook"
        yield sink

"""A real HTTP server on a free loopback port whose answers each test programs.

    api_server.route("/items", handler)   handler(query: dict[str, str], headers: dict) ->
                                          (status, headers dict, body: object or bytes)
    api_server.url + "/items"             where to send the requests
    api_server.requests                   (monotonic time, path, query, headers) of each request
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import pytest

from fixtures_http import serving

Handler = Callable[[dict, dict], tuple[int, dict, object]]


@dataclass
class ApiServer:
    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list = field(default_factory=list)

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def hits(self, path: str) -> list:
        return [r for r in self.requests if r[1] == path]


@pytest.fixture
def api_server():
    api = ApiServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            api.requests.append((time.monotonic(), parts.path, query, dict(self.headers)))
            handler = api.routes.get(parts.path)
            status, headers, body = handler(query, dict(self.headers)) if handler else (404, {}, {"error": "no route"})
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    with serving(Handler) as url:
        api.url = url
        yield api

"""A small retail HTTP API for the chute "retail" example (three collectors chained by queues).

    GET /branches?page=N&per_page=M                 page numbers;       {"data": [...], "page": N}
    GET /branches/{branch_id}/salespersons?cursor=C  a cursor in the body; {"data": [...], "next_cursor": C|null}
    GET /salespersons/{employee_id}/sales            RFC 8288 Link header rel="next" (?offset=N); a JSON list

The data is deterministic per seed. To rehearse failures, `--fail EMPLOYEE_ID` (repeatable)
answers HTTP 500 for that salesperson's sales, and so does anything listed at run time in
server.failing (the tests use that).

Run::

    python -m chute.examples.retail.api --port 8780 [--seed 42] [--branches 3] [--fail E0102]
    python api.py --port 8780              # the copy `chute init --example retail` made
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

CITIES = ["Lyon", "Porto", "Gdansk", "Leeds", "Turin", "Ghent", "Malmo", "Brno"]
NAMES = ["Ada", "Bruno", "Chloe", "Dmitri", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luis"]
PAGE = 2  # sales and salespersons per page: small, so every example run pages


def retail_data(seed: int = 42, branches: int = 3) -> dict:
    """branches, salespersons (by branch) and sales (by salesperson), the same for the same seed."""
    rng = random.Random(seed)
    out = {"branches": [], "salespersons": {}, "sales": {}}
    start = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
    for b in range(1, branches + 1):
        branch_id = f"B{b:02d}"
        out["branches"].append({"branch_id": branch_id, "city": CITIES[(b - 1) % len(CITIES)],
                                "opened": str(date(2015, 1, 1) + timedelta(days=rng.randrange(3000)))})
        people = []
        for p in range(1, rng.randint(2, 4) + 1):
            employee_id = f"E{b:02d}{p:02d}"
            people.append({"employee_id": employee_id, "name": rng.choice(NAMES), "branch_id": branch_id})
            out["sales"][employee_id] = [
                {"sale_id": f"S{b:02d}{p:02d}{s:03d}", "employee_id": employee_id,
                 "amount": round(rng.uniform(5, 500), 2),
                 "sold_at": (start + timedelta(minutes=rng.randrange(60 * 24 * 30))).isoformat().replace("+00:00", "Z")}
                for s in range(1, rng.randint(0, 5) + 1)]
        out["salespersons"][branch_id] = people
    return out


class RetailServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 8780, seed: int = 42, branches: int = 3, host: str = "127.0.0.1"):
        self.data = retail_data(seed, branches)
        self.failing: set[str] = set()  # employee ids whose sales answer 500
        self.requests = 0
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def start(self) -> "RetailServer":
        threading.Thread(target=self.serve_forever, name="retail-api", daemon=True).start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: RetailServer

    def do_GET(self):
        self.server.requests += 1
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        data = self.server.data
        try:
            if parts.path == "/branches":
                page, size = int(query.get("page", 1)), int(query.get("per_page", PAGE))
                rows = data["branches"][(page - 1) * size: page * size]
                return self._json(200, {"data": rows, "page": page})
            if m := re.fullmatch(r"/branches/([^/]+)/salespersons", parts.path):
                people = data["salespersons"].get(m[1])
                if people is None:
                    return self._json(404, {"error": f"no branch {m[1]}"})
                start = int(query.get("cursor", 0))
                nxt = start + PAGE if start + PAGE < len(people) else None
                # the records omit branch_id: the collector adds it from the key it asked for
                rows = [{k: v for k, v in p.items() if k != "branch_id"} for p in people[start:start + PAGE]]
                return self._json(200, {"data": rows, "next_cursor": None if nxt is None else str(nxt)})
            if m := re.fullmatch(r"/salespersons/([^/]+)/sales", parts.path):
                if m[1] in self.server.failing:
                    return self._json(500, {"error": "sales service unavailable"})
                sales = data["sales"].get(m[1])
                if sales is None:
                    return self._json(404, {"error": f"no salesperson {m[1]}"})
                offset = int(query.get("offset", 0))
                headers = {}
                if offset + PAGE < len(sales):
                    headers["Link"] = f'<{parts.path}?offset={offset + PAGE}>; rel="next"'
                return self._json(200, sales[offset:offset + PAGE], headers)
            return self._json(404, {"error": "no such endpoint"})
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})

    def _json(self, status: int, body, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The retail example's HTTP API (branches, salespersons, sales).")
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--branches", type=int, default=3)
    parser.add_argument("--fail", action="append", default=[], metavar="EMPLOYEE_ID",
                        help="answer HTTP 500 for this salesperson's sales (repeatable)")
    args = parser.parse_args(argv)
    server = RetailServer(args.port, args.seed, args.branches)
    server.failing.update(args.fail)
    print(f"retail API on {server.url} (seed {args.seed}, {args.branches} branches); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

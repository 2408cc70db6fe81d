"""Set up the chute "retail" example: three chained stages (collectors chained by queues).

    OUT_DIR/branches/chute.toml       collects branches from the API (page numbers)
    OUT_DIR/salespersons/chute.toml   follows branches: salespersons of each new branch (cursor)
    OUT_DIR/sales/chute.toml          follows salespersons: sales of each new salesperson (Link header)
    OUT_DIR/api.py                    the example's HTTP API (python api.py --port 8780)

Each stage is a chute project; all three share one database (CHUTE_DATABASE_URL), where the
queue between them lives. The API's address is `[params] api` of each stage.

Run::

    python generate.py OUT_DIR [--port 8780]
"""

from __future__ import annotations

import argparse
from pathlib import Path

COMMON = """[params]
api = "http://127.0.0.1:{port}"   # where `python api.py --port {port}` listens

[landing]
patterns = ["*.jsonl"]

[source]
format = "jsonl"
"""

STAGES = {
    "branches": """# Stage 1 of the retail chain: every branch, from GET /branches (page numbers).
[project]
name = "branches"

{common}
[pipeline]
input = "branches"

[tables.branches]
mode = "merge"
primary_key = ["branch_id"]
columns = {{branch_id = "text", city = "text", opened = "date"}}

[extract.branches]
kind = "http"
url = "{{api}}/branches"
records = "data"
pagination = {{style = "page", page_param = "page", page_size_param = "per_page", page_size = 2}}
rate_limit = 20            # requests per second at most
schedule = "0 * * * *"     # hourly (`chute watch`; on AWS an EventBridge schedule)
""",
    "salespersons": """# Stage 2: follows `branches`. Each branch it loads becomes a message; this stage fetches
# that branch's salespersons (a cursor in the response body).
[project]
name = "salespersons"

{common}
[pipeline]
input = "salespersons"

[tables.salespersons]
mode = "merge"
primary_key = ["employee_id"]
columns = {{employee_id = "text", branch_id = "text", name = "text"}}

[follow]
project = "branches"
on = "rows"
table = "branches"
key = "branch_id"

[extract.salespersons]
kind = "http"
url = "{{api}}/branches/{{branch_id}}/salespersons"
records = "data"
pagination = {{style = "cursor", cursor_param = "cursor", cursor_path = "next_cursor"}}
for_each = "message"       # once per key of the message; branch_id is added to each record
rate_limit = 20
""",
    "sales": """# Stage 3: follows `salespersons`: the sales of each salesperson (Link header paging).
[project]
name = "sales"

{common}
[pipeline]
input = "sales"

[tables.sales]
mode = "merge"
primary_key = ["sale_id"]
columns = {{sale_id = "text", employee_id = "text", amount = "float", sold_at = "timestamptz"}}

[follow]
project = "salespersons"
on = "rows"
table = "salespersons"
key = "employee_id"
max_attempts = 3           # then the message is a dead letter of this stage (chute dlq list)

[watch]
retry_initial = 1          # seconds before a failed message is tried again; doubles

[extract.sales]
kind = "http"
url = "{{api}}/salespersons/{{employee_id}}/sales"
pagination = {{style = "link"}}
for_each = "message"
attempts = 3               # tries of one request on 5xx / 429 / timeouts
retry_initial = 0.2
""",
}


def generate(folder: Path, files: int = 0, seed: int = 42, top: int | None = None, port: int = 8780) -> dict:
    """Write the three stages' chute.toml (files/seed/top: chute init's arguments; the data
    comes from the API, deterministic from its own --seed)."""
    folder = Path(folder)
    common = COMMON.format(port=port)
    for stage, text in STAGES.items():
        (folder / stage).mkdir(parents=True, exist_ok=True)
        (folder / stage / "chute.toml").write_text(text.format(common=common), encoding="utf-8")
    message = (f"Stages {', '.join(STAGES)} in {folder}/. Start the API (python {folder}/api.py --port {port}), "
               f"share one database (export CHUTE_DATABASE_URL=...), then: chute extract -p {folder}/branches, "
               f"chute run -p {folder}/branches, chute run -p {folder}/salespersons, chute run -p {folder}/sales "
               "(docs/chains.md)")
    return {"stages": list(STAGES), "api": f"http://127.0.0.1:{port}", "message": message}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--port", type=int, default=8780)
    args = parser.parse_args()
    print(generate(args.out_dir, port=args.port))

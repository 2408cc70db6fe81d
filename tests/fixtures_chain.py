"""The two-stage chain the chain tests share (a plain module, not a pytest plugin):

    shops   an HTTP extraction of {url}/shops, loaded (merge) into table shops
    orders  follows shops by shop_id; for each message fetches {url}/shops/{shop_id}/orders

Each test adds what it is about through `follow`, `watch` and `extract` lines.
"""

from __future__ import annotations

from pathlib import Path

SHOPS_PROJECT = """
[project]
name = "shops"
[landing]
patterns = ["*.jsonl"]
[source]
format = "jsonl"
[pipeline]
input = "shops"
[tables.shops]
mode = "merge"
primary_key = ["shop_id"]
columns = {shop_id = "int", name = "text"}
"""


def upstream(url: str | None = None) -> str:
    """The shops project; with `url`, it extracts its shops from that API."""
    return SHOPS_PROJECT + (f'[extract.shops]\nkind = "http"\nurl = "{url}/shops"\n' if url else "")


def follower(url: str, *, follow: str = "", watch: str = "", extract: str = "",
             columns: str = 'order_id = "int", shop_id = "int", total = "float"') -> str:
    """The orders project, following shops by shop_id."""
    return f"""
[project]
name = "orders"
[landing]
patterns = ["*.jsonl"]
[source]
format = "jsonl"
[pipeline]
input = "orders"
[tables.orders]
mode = "merge"
primary_key = ["order_id"]
columns = {{{columns}}}
[follow]
project = "shops"
table = "shops"
key = "shop_id"
{follow}
[watch]
{watch}
[extract.orders]
kind = "http"
url = "{url}/shops/{{shop_id}}/orders"
for_each = "message"
{extract}
"""


def write_projects(tmp_path: Path, shops: str, orders: str) -> tuple[Path, Path]:
    """tmp_path/shops and tmp_path/orders with these chute.toml texts."""
    up, down = tmp_path / "shops", tmp_path / "orders"
    for folder, text in ((up, shops), (down, orders)):
        folder.mkdir()
        (folder / "chute.toml").write_text(text, encoding="utf-8")
    return up, down

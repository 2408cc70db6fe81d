"""`make screenshots`: the dashboard's pages as docs/dashboard.md shows them.

Makes a stocks project in a temporary folder (a contract that quarantines rows, a freshness
interval, a schedule), loads it in a few runs a day apart into a throwaway PostgreSQL cluster (the
last meets a broken file), serves `chute ui` on a free loopback port and has Debian's Chromium (Playwright,
never a downloaded browser) take each page at a desktop width and at 400 px into docs/screenshots/.

The PNGs are committed, so they are kept small: the top of each page (a viewport's height, not
the whole scroll) reduced to a 64-colour palette, which the flat colours of the pages survive.

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {  # file stem: path
    "overview": "/", "tables": "/tables", "table": "/tables/historical_stocks_data", "trends": "/trends",
    "runs": "/runs", "run": "/runs/2", "files": "/files", "quarantine": "/quarantine",
    "schedules": "/schedules", "lineage": "/lineage", "actions": "/actions", "pipeline": "/pipeline",
}
SIZES = {"desktop": (1280, 760), "phone": (400, 760)}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COLOURS = 64


def make_project(folder: Path) -> Path:
    from chute.examples.scaffold import create_project

    project = folder / "stocks"
    create_project(project, "stocks", files=36, seed=11, top=24)
    config = project / "chute.toml"
    text = config.read_text()
    text = text.replace('export = "processed/historical_stock_data.csv"\n',
                        'export = "processed/historical_stock_data.csv"\nfresh_within = "2d"\n')
    text += ('\n[tables.historical_stocks_data.contract.columns.volume_traded]\nmax = 2000000\n'
             '\n[[schedules]]\nname = "nightly"\ncron = "0 2 * * *"\n')
    config.write_text(text)
    return project


BATCHES = 4  # runs that load files, a day apart; then one that meets a broken file


def load(project_dir: Path, db_url: str) -> None:
    """Load the files in BATCHES runs, then meet a top company's broken file. After each run the
    ledger's times are moved back a day (runs, files, rejects), so that the charts show a few days
    of history rather than one column of minutes: the only thing made up here."""
    import psycopg

    from chute.config.project import load_project
    from chute.run.runner import Runner

    landing = project_dir / "landing"
    waiting = project_dir / "waiting"
    waiting.mkdir()
    files = sorted(p for p in landing.rglob("*") if p.is_file())
    for path in files:
        shutil.move(path, waiting / path.name)
    project = load_project(project_dir)
    triggers = ["manual", "watch", "schedule", "watch"]
    for batch in range(BATCHES):
        for path in files[batch::BATCHES]:
            shutil.move(waiting / path.name, landing / path.name)
        summary = Runner(project, db_url, trigger=triggers[batch % len(triggers)]).run()
        print(f"run {summary.run_id}: {summary.status}", file=sys.stderr)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE chute.runs SET started_at = started_at - interval '1 day',"
                         " ended_at = ended_at - interval '1 day'")
            conn.execute("UPDATE chute.files SET first_seen_at = first_seen_at - interval '1 day',"
                         " updated_at = updated_at - interval '1 day'")
            conn.execute("UPDATE chute.rejects SET created_at = created_at - interval '1 day'")
            conn.execute("UPDATE chute.dead_letters SET created_at = created_at - interval '1 day',"
                         " updated_at = updated_at - interval '1 day'")
    top = (project_dir / "reference" / "top_companies.txt").read_text().split(",")[0].strip().strip("'\"")
    (landing / top).write_text("Date,Open\n2017-01-02\n")
    Runner(project, db_url, trigger="watch").run()


def serve(project_dir: Path, db_url: str):
    import uvicorn

    from chute.config.project import load_project
    from chute.ui.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(load_project(project_dir), db_url), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started or not thread.is_alive():
            break
        thread.join(0.02)
    if not server.started:
        raise SystemExit("the dashboard did not start")
    return server, thread, f"http://127.0.0.1:{port}"


def small_png(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True)
    return out.getvalue()


def shoot(base: str, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            for size, (width, height) in SIZES.items():
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                for name, path in PAGES.items():
                    response = page.goto(base + path, wait_until="networkidle")
                    if response is None or response.status != 200:
                        raise SystemExit(f"{path}: HTTP {response.status if response else '?'}")
                    target = out / f"{name}-{size}.png"
                    target.write_bytes(small_png(page.screenshot()))
                    written.append(target)
                context.close()
        finally:
            browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=os.environ.get("CHUTE_CHROMIUM") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"no Chromium at {args.chromium}: make chromium (or set CHUTE_CHROMIUM)")

    import psycopg

    from chute.db.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="chute-screens-"))
    work.chmod(0o755)  # as root, the server runs as `postgres` and must reach its folder
    cluster = EmbeddedPostgres(work / "pg", fast=True)
    cluster.start()
    try:
        name = f"screens_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db_url = cluster.url(name)
        project = make_project(work)
        load(project, db_url)
        server, thread, base = serve(project, db_url)
        try:
            written = shoot(base, args.out, args.chromium)
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    total = sum(p.stat().st_size for p in written)
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} KB")
    print(f"{len(written)} screenshots, {total // 1024} KB in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

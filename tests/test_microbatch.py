"""Streaming micro-batches: JSON-lines files arriving continuously (as Firehose writes them)
are loaded by `chute watch` in batches bounded by [watch] max_batch_delay and max_batch_files:
every row exactly once, fewer runs than files, each file within the delay plus run times."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import pytest

from fixtures_watch import wait_until

DELAY = 1.0  # [watch] max_batch_delay in these tests
MAX_FILES = 8
FILES = 24
ROWS = 5

TOML = """
[project]
name = "stream"

[landing]
path = "{landing}"
patterns = ["*.json", "*.json.gz"]

[pipeline]
input = "orders"

[source]
format = "jsonl"

[tables.orders]
columns = {{ order_id = "bigint", amount = "double", customer_id = "integer", source_file = "text" }}

[watch]
debounce = 0.05
settle = 0.5
rescan = 600
max_batch_delay = {delay}
max_batch_files = {max_files}
{extra}
"""


def project(folder: Path, landing: str = "landing", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chute.toml").write_text(TOML.format(landing=landing, delay=DELAY, max_files=MAX_FILES, extra=extra),
                                       encoding="utf-8")
    return folder


def body(n: int) -> bytes:
    text = "".join(json.dumps({"order_id": n * ROWS + i, "amount": i * 1.5, "customer": {"id": i}}) + "\n"
                   for i in range(ROWS)).encode()
    return gzip.compress(text) if n % 2 else text


def key(n: int) -> str:
    return f"2024/05/01/10/orders-{n:03d}.json" + (".gz" if n % 2 else "")


def writer(put, interval: float) -> tuple[threading.Thread, dict[str, float]]:
    """A thread that lands FILES files, one every `interval` seconds; name -> when it was complete."""
    landed: dict[str, float] = {}

    def run():
        for n in range(FILES):
            put(key(n), body(n))
            landed[key(n)] = time.time()
            time.sleep(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, landed


def count(query) -> int:
    try:
        return query("SELECT count(*) FROM orders")[0][0]
    except Exception:  # the table appears with the first run
        return 0


def check_batches(query, landed: dict[str, float]) -> None:
    ids = [r[0] for r in query("SELECT order_id FROM orders ORDER BY 1")]
    assert ids == list(range(FILES * ROWS))  # every row, exactly once
    rows = query("""SELECT f.name, f.run_id, extract(epoch FROM r.started_at)::float8,
                           extract(epoch FROM r.ended_at)::float8
                    FROM chute.files f JOIN chute.runs r USING (run_id) WHERE f.status = 'loaded'""")
    assert {r[0] for r in rows} == set(landed)
    runs = {r[1]: (r[2], r[3]) for r in rows}
    per_run = {run: sum(r[1] == run for r in rows) for run in runs}
    assert len(runs) < FILES, per_run  # micro-batches, not a run per file
    assert max(per_run.values()) <= MAX_FILES
    # A file waits at most the delay for its batch to close, plus the run going on when it
    # landed, then its own run; two more delays cover event delivery and start-up (one was
    # exceeded by 0.2 s once, under a full suite: this is a bound on waiting, not a speed test).
    longest = max(end - start for start, end in runs.values())
    for name, run, started, ended in rows:
        assert ended - landed[name] <= 3 * DELAY + longest + (ended - started), (name, ended - landed[name])


def test_watch_loads_a_stream_of_jsonl_files_in_micro_batches(tmp_path, watch_process, db_url, query):
    folder = project(tmp_path / "stream")
    landing = folder / "landing"

    def put(name: str, data: bytes) -> None:  # as Firehose does: the object appears complete
        final = landing / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(final)

    w = watch_process(folder)
    thread, landed = writer(put, DELAY / 8)
    thread.join(60)
    wait_until(lambda: count(query) == FILES * ROWS, timeout=60, what=f"all rows loaded: {w.log()}")
    assert w.terminate() == 0
    check_batches(query, landed)


def test_a_quiet_stream_still_loads_within_the_delay(tmp_path, watch_process, db_url, query):
    folder = project(tmp_path / "quiet")
    w = watch_process(folder)
    (folder / "landing" / "one.json").write_bytes(body(0))
    landed = time.time()
    wait_until(lambda: count(query) == ROWS, timeout=60, what=f"one.json loaded: {w.log()}")
    # The rows commit before the run records its end: wait for that too (a busy machine widens the gap).
    wait_until(lambda: query("SELECT count(*) FROM chute.runs WHERE ended_at IS NULL")[0][0] == 0, timeout=30,
               what=f"the run recorded its end: {w.log()}")
    [(started, ended)] = query("""SELECT extract(epoch FROM r.started_at)::float8, extract(epoch FROM r.ended_at)::float8
                                  FROM chute.files f JOIN chute.runs r USING (run_id)""")
    assert started - landed >= DELAY * 0.9  # it waited for more files to join its batch ...
    assert ended - landed <= 2 * DELAY + (ended - started)  # ... but no longer than the delay


def test_micro_batches_on_s3_events(tmp_path, aws, s3_bucket, db_url, query, cli):
    from chute.config.project import load_project
    from chute.watch.service import WatchService

    folder = project(tmp_path / "s3stream", f"s3://{s3_bucket}/firehose", "[s3]\nretry_after = 0\nwait_seconds = 1")
    cli("s3", "setup", "-p", folder)
    service = WatchService(load_project(folder), db_url)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    s3 = aws.client("s3")
    try:
        assert service.ready.wait(30)
        put_thread, landed = writer(lambda k, data: s3.put_object(Bucket=s3_bucket, Key=f"firehose/{k}", Body=data),
                                    DELAY / 8)
        put_thread.join(60)
        wait_until(lambda: count(query) == FILES * ROWS, timeout=60, what="all rows loaded from S3")
    finally:
        service.stop()
        thread.join(30)
    check_batches(query, landed)


@pytest.mark.parametrize("setting", ["max_batch_delay = -1", "max_batch_files = 0"])
def test_bad_micro_batch_settings_are_refused(tmp_path, cli, setting):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "chute.toml").write_text(f'[project]\nname = "bad"\n\n[watch]\n{setting}\n', encoding="utf-8")
    result = cli("status", "-p", folder, expect=2)
    assert setting.split()[0] in result.output

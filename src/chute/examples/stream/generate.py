"""Generate Kinesis-Firehose-like objects of order events for the chute "stream" example.

Firehose buffers the records of a delivery stream and writes one object every few seconds
(or megabytes), named and laid out like this:

    OUT_DIR/landing/YYYY/MM/DD/HH/orders-stream-1-YYYY-MM-DD-HH-MM-SS-<uuid>.gz

Each object is newline-delimited JSON (one event per line), gzipped unless --no-gzip:

    {"event_id": "...", "event_type": "order_placed", "event_time": "2024-05-01T10:00:03.120Z",
     "order_id": 1001, "customer": {"id": 17, "country": "AU", "email": "c17@example.com"},
     "amount": 23.50, "currency": "AUD", "items": [{"product_id": 3, "quantity": 2}]}

As in real streams, a record is now and then delivered twice (Firehose retries: at least
once), and every tenth object ends with a truncated record (a producer cut off mid-write),
which chute quarantines with its line number.

Run::

    python generate.py OUT_DIR [--files 20] [--records 100] [--seed 42] [--no-gzip]
    python generate.py OUT_DIR --interval 1      # keep landing one object a second (Ctrl-C stops)

Output is deterministic per seed (except with --interval, where the time is now).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import time
import uuid
from pathlib import Path

STREAM = "orders-stream"
COUNTRIES = [("AU", "AUD"), ("NZ", "NZD"), ("US", "USD"), ("GB", "GBP"), ("DE", "EUR")]
TYPES = ["order_placed", "order_placed", "order_paid", "order_cancelled"]


def events(rng: random.Random, start: dt.datetime, count: int, first_order: int) -> list[dict]:
    out = []
    for i in range(count):
        customer = rng.randint(1, 500)
        country, currency = COUNTRIES[customer % len(COUNTRIES)]
        items = [{"product_id": rng.randint(1, 50), "quantity": rng.randint(1, 4)} for _ in range(rng.randint(1, 4))]
        at = start + dt.timedelta(milliseconds=rng.randint(0, 999) + i * 10)
        out.append({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": rng.choice(TYPES),
            "event_time": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "order_id": first_order + i,
            "customer": {"id": customer, "country": country, "email": f"c{customer}@example.com"},
            "amount": round(sum(it["quantity"] for it in items) * rng.uniform(2.5, 30.0), 2),
            "currency": currency,
            "items": items,
        })
    return out


def object_key(at: dt.datetime, rng: random.Random, compressed: bool) -> str:
    """Firehose's default S3 layout: YYYY/MM/DD/HH/<stream>-<version>-<timestamp>-<uuid>."""
    name = f"{STREAM}-1-{at:%Y-%m-%d-%H-%M-%S}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    return f"{at:%Y/%m/%d/%H}/{name}" + (".gz" if compressed else "")


def body(records: list[dict], truncated: bool, compressed: bool) -> bytes:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if truncated:
        text += json.dumps(records[0])[:40] + "\n"  # cut off mid-record
    data = text.encode("utf-8")
    return gzip.compress(data, mtime=0) if compressed else data


def land(landing: Path, key: str, data: bytes) -> Path:
    """Write under a hidden name, then rename: a watcher never sees half an object."""
    final = landing / key
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, final)
    return final


def generate(out_dir: Path, files: int = 20, seed: int = 42, top: int | None = None, records: int = 100,
             compressed: bool = True, interval: float = 0.0) -> dict:
    """Write `files` Firehose objects (forever with files=0 and an interval); return a summary.
    (`top` is unused: the signature is every example generator's.)"""
    if files < 0 or records < 1 or (files == 0 and interval <= 0):
        raise ValueError("need records >= 1, and files >= 1 (or files = 0 with an interval)")
    rng = random.Random(seed)
    landing = Path(out_dir) / "landing"
    started = time.perf_counter()
    clock = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
    written, rows, previous = 0, 0, []
    while files == 0 or written < files:
        if interval > 0:
            clock = dt.datetime.now(dt.timezone.utc)
        batch = events(rng, clock, records, 1000 + written * records)
        if previous and rng.random() < 0.3:  # at-least-once delivery: a record of the last object again
            batch.append(rng.choice(previous))
        land(landing, object_key(clock, rng, compressed), body(batch, written % 10 == 9, compressed))
        previous = batch
        written += 1
        rows += len(batch)
        if interval > 0:
            time.sleep(interval)
        else:
            clock += dt.timedelta(seconds=rng.randint(1, 5))  # Firehose's buffer interval
    return {"files": written, "rows": rows, "landing_dir": str(landing),
            "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="writes landing/ here")
    parser.add_argument("--files", type=int, default=20, help="objects to write (default 20; 0 with --interval: "
                                                               "until Ctrl-C)")
    parser.add_argument("--records", type=int, default=100, help="events per object (default 100)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-gzip", dest="compressed", action="store_false", help="plain JSON lines")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between objects, stamped with the current time (a live stream)")
    args = parser.parse_args(argv)
    try:
        summary = generate(args.out_dir, args.files, args.seed, records=args.records, compressed=args.compressed,
                           interval=args.interval)
    except KeyboardInterrupt:
        return
    print(f"wrote {summary['files']} objects, {summary['rows']} events under {summary['landing_dir']} "
          f"in {summary['seconds']}s")


if __name__ == "__main__":
    main()

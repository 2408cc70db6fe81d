"""The `stream` example (a Firehose delivery stream's objects): generated Firehose objects load once,
re-delivered events merge into one row, a truncated record is quarantined, e-mails never land."""

from __future__ import annotations

import gzip
import json


def test_stream_example_loads_firehose_objects(tmp_path, cli, query):
    folder = tmp_path / "s"
    out = json.loads(cli("init", folder, "--example", "stream", "--files", "12", "--json").output)
    assert out["example"] == "stream" and out["data"]["files"] == 12
    objects = sorted(p for p in (folder / "landing").rglob("*") if p.is_file())
    assert len(objects) == 12
    assert all(p.relative_to(folder / "landing").parts[:4] == ("2024", "05", "01", "10") for p in objects)
    lines = [line for p in objects for line in gzip.decompress(p.read_bytes()).decode().splitlines()]
    events = {}
    bad = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        events[record["event_id"]] = record
    assert bad == 1  # the tenth object ends with a truncated record

    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["files_loaded"] == 12 and summary["rows_rejected"] == 1
    assert query("SELECT count(*), count(DISTINCT event_id) FROM order_events_clean")[0] == (len(events), len(events))
    some = next(iter(events.values()))
    row = query("SELECT customer_id, customer_country, amount::float8, items FROM order_events_clean "
                "WHERE event_id = %s", (some["event_id"],))[0]
    assert row[:3] == (some["customer"]["id"], some["customer"]["country"], some["amount"])
    assert json.loads(row[3]) == some["items"]
    columns = [r[0] for r in query("SELECT column_name FROM information_schema.columns "
                                   "WHERE table_name = 'order_events_clean'")]
    assert "customer_email" not in columns
    [(line, raw)] = query("SELECT line_number, raw_record FROM chute.rejects")
    assert line == len(gzip.decompress(objects_named(folder, query)).decode().splitlines())
    assert "@example.com" not in raw

    again = json.loads(cli("run", "-p", folder, "--json").output)
    assert again["files_loaded"] == 0 and again["unchanged"] == 12


def objects_named(folder, query) -> bytes:
    [(name,)] = query("SELECT file_name FROM chute.rejects")
    return (folder / "landing" / name).read_bytes()

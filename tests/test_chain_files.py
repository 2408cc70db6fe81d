"""Chained stages by files (`[follow] on = "files"`): the upstream's load transaction sends the
names of the files it loaded; the stage that follows runs its own pipeline over exactly those
names of the shared landing zone, once. Real PostgreSQL."""

from __future__ import annotations

import json

from conftest import write

UPSTREAM = """
[project]
name = "readings"
[landing]
path = "{zone}"
patterns = ["in_*.csv"]
[pipeline]
input = "readings"
[tables.readings]
mode = "merge"
primary_key = ["reading_id"]
columns = {{reading_id = "int", sensor = "text", value = "float"}}
"""

# Its own pipeline over the same files: a node sums the values per sensor and file.
FOLLOWER = """
[project]
name = "sensor_totals"
[landing]
path = "{zone}"
patterns = ["*.csv"]
[pipeline]
module = "totals.py"
[tables.sensor_totals]
mode = "append"
columns = {{sensor = "text", total = "float", source_file = "text"}}
[follow]
project = "readings"
on = "files"
"""

TOTALS_PY = """
import polars as pl
from chute import node


@node(outputs="sensor_totals")
def totals(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.group_by("sensor", "source_file").agg(total=pl.col("value").sum()).select("sensor", "total", "source_file")
"""


def setup(tmp_path):
    zone = tmp_path / "zone"
    zone.mkdir()
    up, down = tmp_path / "readings", tmp_path / "totals"
    for folder, text in ((up, UPSTREAM), (down, FOLLOWER)):
        folder.mkdir()
        (folder / "chute.toml").write_text(text.format(zone=zone), encoding="utf-8")
    (down / "totals.py").write_text(TOTALS_PY, encoding="utf-8")
    return zone, up, down


def readings(zone, name: str, first_id: int, values: list[tuple[str, float]]):
    lines = ["reading_id,sensor,value"] + [f"{first_id + i},{s},{v}" for i, (s, v) in enumerate(values)]
    return write(zone / name, "\n".join(lines) + "\n")


def run(cli, folder) -> dict:
    return json.loads(cli("run", "-p", folder, "--json", expect=None).output)


def totals(query) -> list[tuple]:
    return query("SELECT source_file, sensor, total FROM sensor_totals ORDER BY 1, 2")


def test_the_follower_runs_its_pipeline_over_the_files_the_upstream_loaded_exactly_once(tmp_path, db_url, cli, query):
    zone, up, down = setup(tmp_path)
    readings(zone, "in_a.csv", 1, [("s1", 1.0), ("s1", 2.0), ("s2", 5.0)])
    readings(zone, "in_b.csv", 10, [("s2", 7.0)])
    # In the shared zone, matching the follower's patterns, but never loaded upstream: no message names it.
    readings(zone, "other.csv", 100, [("s9", 99.0)])
    assert run(cli, up)["status"] == "succeeded"  # nobody follows yet: no messages

    first = run(cli, down)  # subscribes: the upstream's loaded files become its first messages
    assert first["status"] == "succeeded", first
    assert first["chain"]["backfilled"] == 2 and first["chain"]["claimed"] == 2 and first["chain"]["acknowledged"] == 2
    assert totals(query) == [("in_a.csv", "s1", 3.0), ("in_a.csv", "s2", 5.0), ("in_b.csv", "s2", 7.0)]

    readings(zone, "in_c.csv", 20, [("s1", 4.0)])
    upstream = run(cli, up)
    assert upstream["status"] == "succeeded"
    sent = query("SELECT payload FROM chute.queue WHERE upstream_run = %s", (upstream["run_id"],))
    assert [p["files"] for (p,) in sent] == [["in_c.csv"]]  # written by the upstream's load transaction

    second = run(cli, down)
    assert second["chain"]["claimed"] == 1 and second["chain"]["acknowledged"] == 1
    assert totals(query)[-1] == ("in_c.csv", "s1", 4.0) and len(totals(query)) == 4

    # Nothing new: neither stage loads anything again.
    assert run(cli, up)["files_loaded"] == 0
    assert run(cli, down)["chain"]["claimed"] == 0
    assert query("SELECT status, count(*) FROM chute.queue GROUP BY 1") == [("done", 3)]

    # A message delivered again (as after a lapsed lease) finds its file loaded: acknowledged, nothing twice.
    query_exec(db_url, "UPDATE chute.queue SET status = 'ready' WHERE payload->'files' ? 'in_a.csv'")
    again = run(cli, down)
    assert again["status"] == "succeeded" and again["chain"]["acknowledged"] == 1
    assert len(totals(query)) == 4
    assert query("SELECT count(*) FROM chute.files WHERE pipeline = 'sensor_totals' AND name = 'other.csv'") == [(0,)]
    assert query("SELECT name, status FROM chute.files WHERE pipeline = 'sensor_totals' ORDER BY 1") == [
        ("in_a.csv", "loaded"), ("in_b.csv", "loaded"), ("in_c.csv", "loaded")]


def test_a_named_file_the_follower_cannot_find_fails_its_message_clearly(tmp_path, db_url, cli, query):
    zone, up, down = setup(tmp_path)
    (down / "chute.toml").write_text(FOLLOWER.format(zone=zone) + "max_attempts = 1\n", encoding="utf-8")
    readings(zone, "in_a.csv", 1, [("s1", 1.0)])
    run(cli, up)
    (zone / "in_a.csv").unlink()  # gone before the follower got to it
    failed = run(cli, down)
    assert failed["status"] == "failed" and failed["chain"]["dead"] == 1
    assert "in_a.csv: not in the landing zone" in failed["error"], failed["error"]
    listed = json.loads(cli("dlq", "list", "-p", down, "--json").output)["dead_letters"]
    assert [d["name"] for d in listed] == ["from readings: in_a.csv"]
    assert query("SELECT count(*) FROM readings") == [(1,)]  # the upstream's rows stay


def query_exec(db_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        conn.execute(statement)

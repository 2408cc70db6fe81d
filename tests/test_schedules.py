"""Cron schedules start runs; fires missed while no watch ran are recorded, not skipped."""

from __future__ import annotations

import threading

import psycopg
import pytest

from chute.ledger import schema
from chute.config.project import Schedule, load_project
from chute.watch.trigger import RunRequest, Trigger
from chute.watch.schedule import ScheduleTrigger
from chute.watch.service import WatchService
from fixtures_watch import csv_rows, drop, wait_until


def test_a_seconds_schedule_fires_and_records(db_url, query):
    fired: list[RunRequest] = []
    trigger = ScheduleTrigger([Schedule(name="every-second", cron="* * * * * *")], db_url, "p")
    trigger.start(fired.append)
    try:
        wait_until(lambda: len(fired) >= 2, what="two fires")
    finally:
        trigger.stop()
    assert all(r.trigger == "schedule" and r.details["schedule"] == "every-second" for r in fired)
    rows = query("SELECT status, count(*) FROM chute.schedule_fires GROUP BY status")
    assert dict(rows)["fired"] >= 2


def test_missed_fires_are_recorded_and_caught_up(db_url, query):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS chute")
        schema.ensure_schema(conn)
        # The last fire was an hour ago; every 10 minutes since then was missed (6 fires).
        conn.execute("INSERT INTO chute.schedule_fires (pipeline, schedule, due_at, status, cron)"
                     " VALUES ('p', 'ten', date_trunc('hour', now()) - interval '1 hour', 'fired', '*/10 * * * *'),"
                     "        ('p', 'quiet', date_trunc('hour', now()) - interval '1 hour', 'fired', '*/10 * * * *')")
    fired: list[RunRequest] = []
    schedules = [Schedule(name="ten", cron="*/10 * * * *", missed="run"),
                 Schedule(name="quiet", cron="*/10 * * * *")]  # missed = "report" (the default)
    trigger = ScheduleTrigger(schedules, db_url, "p")
    trigger.start(fired.append)
    trigger.stop()
    assert 6 <= len(trigger.missed["ten"]) <= 12  # 6 in the past hour, plus those of this hour so far
    counts = dict(query("SELECT schedule, count(*) FROM chute.schedule_fires WHERE status = 'missed' GROUP BY 1"))
    assert counts["ten"] == counts["quiet"] == len(trigger.missed["ten"])
    catch_up = [r for r in fired if "catch-up" in r.reason]
    assert len(catch_up) == 1 and catch_up[0].details == {"schedule": "ten", "missed": counts["ten"]}


class Replayer(Trigger):
    """Emits the same event many times, as S3 does when it delivers at least once."""
    name = "replay"

    def __init__(self, names, times):
        self.names, self.times, self.acks = names, times, []

    def start(self, emit):
        for _ in range(self.times):
            emit(RunRequest(self.name, "replayed", names=tuple(self.names), done=self.acks.append))

    def stop(self):
        pass


def test_service_runs_schedules_and_duplicate_events_load_once(items_project, db_url, query):
    folder = items_project(extra='[[schedules]]\nname = "tick"\ncron = "* * * * * *"\n')
    drop(folder, "a.csv", csv_rows(1, 4))
    project = load_project(folder)
    replay = Replayer(["a.csv"], 5)
    service = WatchService(project, db_url, triggers=[replay, ScheduleTrigger(project.schedules, db_url, "items")],
                           metrics_port=0)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(replay.acks) == 5, what="the replayed events acknowledged")
        wait_until(lambda: query("SELECT count(*) FROM chute.runs WHERE trigger = 'schedule'")[0][0] >= 1,
                   what="a scheduled run")
    finally:
        service.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert all(replay.acks)
    assert query("SELECT count(*), count(DISTINCT id) FROM items") == [(4, 4)]
    assert query("SELECT count(*) FROM chute.files") == [(1,)]


def test_an_extraction_schedule_extracts_then_loads(tmp_path, db_url, query):
    """`[extract.NAME] schedule`: chute watch runs the extraction, then a run loads its parts."""
    import sqlite3

    from chute.config.project import project_from_dict
    from chute.watch.service import default_triggers

    source = tmp_path / "shop.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"2025-01-01 10:00:0{i}") for i in range(1, 6)])
    project = project_from_dict({
        "project": {"name": "shop"}, "landing": {"patterns": ["*.parquet"]}, "source": {"format": "parquet"},
        "pipeline": {"input": "orders"},
        "extract": {"orders": {"kind": "database", "url": f"sqlite:///{source}", "table": "orders",
                               "key": "order_id", "cursor": "updated_at", "schedule": "* * * * * *"}},
        "tables": {"orders": {"mode": "merge", "primary_key": ["order_id"],
                              "columns": {"order_id": "bigint", "updated_at": "timestamptz"}}},
    }, tmp_path)
    scheduled = [t for t in default_triggers(project, db_url) if isinstance(t, ScheduleTrigger)]
    assert [(s.name, s.extract) for s in scheduled[0].schedules] == [("extract.orders", ["orders"])]
    service = WatchService(project, db_url, triggers=scheduled)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        def loaded() -> int:
            return query("SELECT count(*) FROM orders")[0][0] if query(
                "SELECT to_regclass('public.orders') IS NOT NULL")[0][0] else 0

        wait_until(lambda: loaded() == 5, what="the extracted rows loaded")
        with sqlite3.connect(source) as conn:
            conn.execute("INSERT INTO orders VALUES (6, '2025-01-01 10:00:09')")
        wait_until(lambda: loaded() == 6, what="the new row extracted and loaded")
    finally:
        service.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert query("SELECT count(*), count(DISTINCT order_id) FROM orders") == [(6, 6)]
    assert query("SELECT value->'key' FROM chute.watermarks WHERE extract = 'orders'") == [([6],)]


def test_a_schedule_naming_an_unknown_extraction_is_refused(tmp_path):
    from chute.errors import ConfigError
    from chute.config.project import project_from_dict

    with pytest.raises(ConfigError, match="no \\[extract.NAME\\] section: nope"):
        project_from_dict({"project": {"name": "p"}, "schedules": [{"name": "s", "cron": "* * * * *",
                                                                    "extract": ["nope"]}]}, tmp_path)

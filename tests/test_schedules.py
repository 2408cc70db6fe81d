"""Cron schedules start runs; fires missed while no watch ran are recorded, not skipped."""

from __future__ import annotations

import threading

import psycopg

from chute.project import Schedule, load_project
from chute.triggers.base import RunRequest, Trigger
from chute.triggers.schedule import ScheduleTrigger, ensure_schema
from chute.watch import WatchService
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
        ensure_schema(conn)
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

"""Prometheus metrics of `chute watch`, served on 127.0.0.1:PORT/metrics (prometheus_client).

    chute_files_total{pipeline,status}          files settled: loaded, failed, skipped
    chute_rows_loaded_total{pipeline}           rows loaded into the target tables
    chute_runs_total{pipeline,status,trigger}   runs: succeeded, failed, error (could not run)
    chute_run_failures_total{pipeline}          runs that failed or could not run at all
    chute_dead_letters_total{pipeline}          files and events that became dead letters
    chute_retries_total{pipeline}               retries after transient errors
    chute_run_duration_seconds{pipeline}        histogram of run wall time
    chute_event_to_loaded_seconds{pipeline}     histogram: first event of a run -> its rows committed
    chute_last_run_timestamp_seconds{pipeline}  when the last run ended (alert when it gets old)
    chute_queue_messages{stage,status}          chained stages: messages ready, leased, dead in
                                                chute.queue for this stage and those following it,
                                                read from the database at each scrape
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("chute.metrics")

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self.registry = CollectorRegistry()
        r = self.registry
        self.files = Counter("chute_files", "Files settled by status", ["pipeline", "status"], registry=r)
        self.rows = Counter("chute_rows_loaded", "Rows loaded into target tables", ["pipeline"], registry=r)
        self.runs = Counter("chute_runs", "Runs by outcome", ["pipeline", "status", "trigger"], registry=r)
        self.failures = Counter("chute_run_failures", "Runs that failed or could not run", ["pipeline"], registry=r)
        self.dead = Counter("chute_dead_letters", "Files and events that became dead letters", ["pipeline"],
                            registry=r)
        self.retries = Counter("chute_retries", "Retries after transient errors", ["pipeline"], registry=r)
        self.duration = Histogram("chute_run_duration_seconds", "Run wall time", ["pipeline"], registry=r,
                                  buckets=_LATENCY_BUCKETS)
        self.latency = Histogram("chute_event_to_loaded_seconds", "From the first event of a run to its commit",
                                 ["pipeline"], registry=r, buckets=_LATENCY_BUCKETS)
        self.last_run = Gauge("chute_last_run_timestamp_seconds", "When the last run ended", ["pipeline"], registry=r)
        for status in ("loaded", "failed", "skipped"):  # show zeros from the start
            self.files.labels(pipeline, status)
        for m in (self.rows, self.failures, self.dead, self.retries):
            m.labels(pipeline)
        self.server = None
        self.queue: QueueCollector | None = None

    def track_queue(self, db_url: str, stage: str) -> None:
        """Add chute_queue_messages, read at scrape time (a chained stage, or one that others follow)."""
        self.queue = QueueCollector(db_url, stage)
        self.registry.register(self.queue)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the HTTP endpoint (a daemon thread); returns the port (useful with port 0)."""
        self.server, _ = start_http_server(port, addr=host, registry=self.registry)
        return self.server.server_port

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.queue is not None:
            self.queue.close()

    def record_run(self, summary, trigger: str, latency: float | None) -> None:
        p = self.pipeline
        for status in ("loaded", "failed", "skipped"):
            if n := summary.count(status):
                self.files.labels(p, status).inc(n)
        self.rows.labels(p).inc(summary.rows_loaded)
        self.runs.labels(p, summary.status, trigger).inc()
        if not summary.ok:
            self.failures.labels(p).inc()
        if summary.dead_letters:
            self.dead.labels(p).inc(summary.dead_letters)
        self.duration.labels(p).observe(summary.seconds)
        if latency is not None and summary.count("loaded"):
            self.latency.labels(p).observe(latency)
        self.last_run.labels(p).set_to_current_time()

    def record_error(self, trigger: str) -> None:
        self.runs.labels(self.pipeline, "error", trigger).inc()
        self.failures.labels(self.pipeline).inc()
        self.dead.labels(self.pipeline).inc()
        self.last_run.labels(self.pipeline).set_to_current_time()


class QueueCollector:
    """chute_queue_messages{stage,status}: the chain queue's depth when Prometheus asks (not a
    copy from the last run: messages arrive and age while no run happens). Its own stage and
    the stages that follow it; nothing when the database cannot be read (the scrape still works)."""

    STATUSES = ("ready", "leased", "dead")

    def __init__(self, db_url: str, stage: str):
        self.db_url = db_url
        self.stage = stage
        self._conn = None
        self._lock = threading.Lock()  # scrapes may overlap; one connection

    def describe(self):
        return [GaugeMetricFamily("chute_queue_messages", "Chain queue messages by stage and status",
                                  labels=["stage", "status"])]

    def collect(self):
        family = GaugeMetricFamily("chute_queue_messages", "Chain queue messages by stage and status",
                                   labels=["stage", "status"])
        for stage, counts in self._depths().items():
            for status in self.STATUSES:
                family.add_metric([stage, status], counts.get(status, 0))
        yield family

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _depths(self) -> dict[str, dict[str, int]]:
        from chute.ledger import queue
        from chute.db.postgres import connect

        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self.db_url)
                if not queue.exists(self._conn):
                    return {}
                stages = {self.stage, *(s["stage"] for s in queue.subscribers(self._conn, self.stage))}
                is_stage = self._conn.execute("SELECT 1 FROM chute.subscriptions WHERE stage = %s",
                                              (self.stage,)).fetchone() is not None
                if not is_stage:
                    stages.discard(self.stage)
                depths = queue.depth(self._conn)
                return {s: depths.get(s, {}) for s in sorted(stages)}
            except Exception as exc:  # the database is away: no queue samples in this scrape
                log.debug("queue depth not readable: %s", exc)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                return {}

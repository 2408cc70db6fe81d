"""Commit hooks: statements that ride in a load's own transaction (Runner.commit_hooks).

    Publisher  upstream side: the keys of rows it loaded (or the names of files it loaded)
               become messages of every stage that follows it
    Acker      downstream side: a message is acknowledged when the last of the files its
               work produced is committed

A hook is told the rows of each table as they are written (`rows`), returns its statements
for the unit's commit (`statements`, $n parameters, run on the load connection), and hears
whether the unit committed (`committed`, with its transaction id) or rolled back (`reset`).
"""

from __future__ import annotations

import json
import logging

import polars as pl

from chute.ledger import queue
from chute.ledger.files import LedgerRow

log = logging.getLogger("chute.chain")

ENQUEUE_SQL = """
INSERT INTO chute.queue (stage, upstream, upstream_run, payload)
SELECT $1, $2, $3, value FROM jsonb_array_elements($4::jsonb)
"""


class Publisher:
    def __init__(self, pipeline: str, subscriptions: list[dict]):
        self.pipeline = pipeline
        self.subscriptions = subscriptions
        self.pending: dict[str, list[dict]] = {s["stage"]: [] for s in subscriptions}
        self.published = 0  # messages committed

    def rows(self, table: str, frame: pl.DataFrame) -> None:
        for s in self.subscriptions:
            if s["follows"] != "rows" or s["source_table"] != table or frame.height == 0:
                continue
            missing = [k for k in s["key"] if k not in frame.columns]
            if missing:
                log.error("stage %s follows %s.%s by %s, which the table lacks: no message sent", s["stage"],
                          self.pipeline, table, ", ".join(missing))
                continue
            self.pending[s["stage"]].extend(frame.select(s["key"]).unique(maintain_order=True).to_dicts())

    def statements(self, files: list[LedgerRow]) -> list[tuple[str, tuple]]:
        out = []
        loaded = [f.name for f in files if f.loaded]
        run_id = files[0].run_id if files else None
        for s in self.subscriptions:
            if s["follows"] == "rows":
                keys = list({json.dumps(k, default=str, sort_keys=True): k for k in self.pending[s["stage"]]}.values())
                payloads = [{"keys": c} for c in queue.chunks(keys, s["keys_per_message"])]
            else:
                payloads = [{"files": c} for c in queue.chunks(loaded, s["keys_per_message"])]
            if payloads:
                out.append((ENQUEUE_SQL, (s["stage"], self.pipeline, run_id, queue.to_json(payloads))))
                self._count = getattr(self, "_count", 0) + len(payloads)
        return out

    def committed(self, xid: int) -> None:
        self.published += getattr(self, "_count", 0)
        self.reset()

    def reset(self) -> None:
        self._count = 0
        for stage in self.pending:
            self.pending[stage] = []


class Acker:
    def __init__(self, stage: str, files_of: dict[int, set[str]]):
        self.stage = stage
        self.remaining = {mid: set(names) for mid, names in files_of.items() if names}
        self.acked: set[int] = set()
        self._tentative: dict[int, set[str]] = {}

    def rows(self, table: str, frame: pl.DataFrame) -> None:
        pass

    def statements(self, files: list[LedgerRow]) -> list[tuple[str, tuple]]:
        names = {f.name for f in files if f.loaded}
        self._tentative = {mid: left - names for mid, left in self.remaining.items() if left & names}
        out = []
        for mid, left in self._tentative.items():
            if not left:
                out.append((queue.ACK_SQL, (mid,)))
                out.append((queue.RESOLVE_SQL, (self.stage, str(mid))))
        return out

    def committed(self, xid: int) -> None:
        for mid, left in self._tentative.items():
            if left:
                self.remaining[mid] = left
            else:
                del self.remaining[mid]
                self.acked.add(mid)
        self._tentative = {}

    def reset(self) -> None:
        self._tentative = {}


def publishers(conn, pipeline: str) -> list[Publisher]:
    """A Publisher when some stage follows this pipeline, else nothing."""
    subs = queue.subscribers(conn, pipeline)
    return [Publisher(pipeline, subs)] if subs else []

"""Commit hooks: statements that ride in a load unit's own transaction.

A hook (chute.chain.publish: Publisher, Acker; chute.load.export: ExportRows) is told each
table's rows as they are written (`rows`), gives its statements for the unit's commit
(`statements`, $n parameters, run on the load connection) and then hears whether the unit
committed (`committed`, with the transaction's id) or rolled back (`reset`). `chute run` (runner.py) and
the load step on AWS (deploy/aws/staged_load.py) load through the same LoadUnit; both drive
their hooks through this one class, so the upstream of a chain publishes its messages in the
same transaction whichever of them loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import polars as pl

from chute.ledger.files import LedgerRow


class CommitHooks:
    def __init__(self, hooks: Iterable = ()):
        self.hooks = list(hooks)

    def rows(self, table: str, frame: pl.DataFrame) -> None:
        for hook in self.hooks:
            hook.rows(table, frame)

    def commit(self, unit, files: list[LedgerRow]) -> None:
        """The unit's rows, its ledger rows and every hook's statements: one COMMIT."""
        unit.commit(files, [s for hook in self.hooks for s in hook.statements(files)])
        for hook in self.hooks:
            hook.committed(unit.xid)

    def reset(self) -> None:
        for hook in self.hooks:
            hook.reset()


@contextmanager
def undone_on_failure(unit, hooks: CommitHooks, gate, targets: dict) -> Iterator[None]:
    """A unit that fails rolls back, and so does what it changed in memory: the hooks' pending
    statements, the gate's counters, and which replace-mode tables count as emptied."""
    truncated = {name: t.truncated for name, t in targets.items()}
    try:
        yield
    except BaseException:
        hooks.reset()
        unit.rollback()
        gate.undo()
        for name, t in targets.items():
            t.truncated = truncated[name]
        raise

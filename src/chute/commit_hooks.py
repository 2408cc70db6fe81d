"""Commit hooks: statements that ride in a load unit's own transaction.

A hook (chute.chain.publish: Publisher, Acker) is told each table's rows as they are written
(`rows`), gives its statements for the unit's commit (`statements`, $n parameters, run on the
load connection) and then hears whether the unit committed (`committed`) or rolled back
(`reset`). `chute run` (runner.py) and the load step on AWS (deploy/aws/staged_load.py) load
through the same LoadUnit; both drive their hooks through this one class, so the upstream of
a chain publishes its messages in the same transaction whichever of them loads it.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl


class CommitHooks:
    def __init__(self, hooks: Iterable = ()):
        self.hooks = list(hooks)

    def rows(self, table: str, frame: pl.DataFrame) -> None:
        for hook in self.hooks:
            hook.rows(table, frame)

    def commit(self, unit, files: list[dict]) -> None:
        """The unit's rows, its ledger rows and every hook's statements: one COMMIT."""
        unit.commit(files, [s for hook in self.hooks for s in hook.statements(files)])
        for hook in self.hooks:
            hook.committed()

    def reset(self) -> None:
        for hook in self.hooks:
            hook.reset()

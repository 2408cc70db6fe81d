"""Terminal output for people (rich), set up at first use: a command whose output is JSON for
a script never imports rich (~25 ms of every start-up; tests/test_startup.py)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


class _Console:
    """A rich Console made when first used."""

    def __init__(self, **options: Any):
        self._options = options
        self._console = None

    def made(self) -> Any:
        """The rich Console itself (for rich objects that take one)."""
        if self._console is None:
            from rich.console import Console

            console = Console(**self._options)
            # Lines are wrapped to the width only on a terminal: in a pipe, a log file or a CI
            # log, a message stays one line that grep and log collectors can take whole.
            if not console.is_terminal:
                console.soft_wrap = True
            self._console = console
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


out = _Console()
err = _Console(stderr=True)


def escape(text: str) -> str:
    """`text` shown as it is inside rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def data_table(*columns: str) -> Table:
    """A table of data: cells are shown as they are (a file named '[x].csv' or a regex such as
    '^[a-z]+$' is not Rich markup)."""
    from rich import box

    return _data_table_class()(*columns, box=box.SIMPLE_HEAD, pad_edge=False)


@functools.cache
def _data_table_class() -> type:
    from rich.table import Table
    from rich.text import Text

    class DataTable(Table):
        def add_row(self, *cells, **kwargs) -> None:
            super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kwargs)

    return DataTable

"""The two table shapes the CLI prints (rich), shared by every command module.

Every cell is rendered as plain `rich.text.Text`, never as rich markup: many cells are strings
from the chain or from peers (a job's abort reason, a spec's description), and one containing
``[/]`` crashed `job status` before. Lists print one item per line, dicts as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any


def _cell(v: Any):
    from rich.text import Text

    if isinstance(v, (list, tuple)):
        v = "\n".join(str(x) for x in v) or "-"
    elif isinstance(v, dict):
        v = json.dumps(v)
    return Text(str(v))


def kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> None:
    """A two-column "field: value" table (status, job, account views)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, _cell(v))
    Console().print(t)


def grid(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table with a header row and one line per item (job list, examples, blob list)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*(_cell(v) for v in r))
    Console().print(t)

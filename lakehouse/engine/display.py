"""Query rows as a rich table for terminals (the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text


def rows_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """Cells are plain text: data such as "[/x]" would otherwise be read as rich markup (and raise)."""
    table = Table()
    for c in columns:
        table.add_column(Text(str(c)))
    for r in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in r))
    return table

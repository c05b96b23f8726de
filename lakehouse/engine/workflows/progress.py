"""Live per-node progress of a workflow run on a terminal: a table redrawn as nodes start and finish.

    with LiveProgress(workflow, Console(stderr=True)) as show:
        runner.run(workflow, inputs, on_node=show)
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lakehouse.engine.workflows.spec import Workflow
from lakehouse.engine.workflows.store import NodeRecord

_STYLE = {"pending": ("·", "dim"), "running": ("…", "yellow"), "succeeded": ("✓", "green"), "failed": ("✗", "red"),
          "skipped": ("-", "dim")}


class LiveProgress:
    def __init__(self, workflow: Workflow, console: Console) -> None:
        self.name = workflow.name
        self.nodes = {n: NodeRecord(n) for n in workflow.nodes}
        self._lock = threading.Lock()  # nodes of a layer report from their own threads
        self._live = Live(self._table(), console=console, refresh_per_second=8)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._live.update(self._table(), refresh=True)
        self._live.stop()

    def __call__(self, record: NodeRecord) -> None:
        # Drawn now, not at the next tick: a node shorter than a tick would never show as running.
        with self._lock:
            self.nodes[record.node_id] = record
            self._live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        table = Table(title=Text(f"workflow {self.name}"), title_justify="left")
        for column in ("node", "status", "attempts", "seconds", "note"):
            table.add_column(column)
        for rec in self.nodes.values():
            mark, style = _STYLE.get(rec.status, ("?", ""))
            seconds = ""
            if rec.started_at is not None and rec.finished_at is not None:
                seconds = f"{(rec.finished_at - rec.started_at).total_seconds():.1f}"
            table.add_row(Text(rec.node_id), Text(f"{mark} {rec.status}", style=style), Text(str(rec.attempts or "")),
                          Text(seconds), Text((rec.error_message or "")[:100]))
        return table

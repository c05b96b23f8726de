"""`EngineContext`: what an engine subsystem may use of the lake, and nothing more.

Subsystems (ingest, datasets, vectors, playbooks, retrieval, rag) take this narrow context, not the `Lake`:
settings, where the lake lives, its cursors and transactions, the parsed model table, the provider keys, the
storage journal and the clock that says which snapshot the lake is at. `Lake` assembles the subsystems; the
operations catalog (`engine/ops`) is the only caller that sees them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

if TYPE_CHECKING:
    from lakehouse.engine.chat.keys import KeyRing
    from lakehouse.engine.chat.routing import ModelTable
    from lakehouse.engine.connection import Connections, Location
    from lakehouse.engine.observer import StorageJournal
    from lakehouse.engine.snapshots import LakeClock
    from lakehouse.settings import Settings

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class EngineContext:
    settings: Settings
    location: Location
    models: ModelTable
    keys: KeyRing
    journal: StorageJournal
    db: Connections
    clock: LakeClock

    @property
    def root(self) -> Path:
        return self.location.root

    @property
    def write_lock(self) -> Any:
        """Held by every lake write of this process (DuckLake commits of one process would conflict)."""
        return self.db.write_lock

    @contextlib.contextmanager
    def fresh_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new read-write cursor, closed afterwards: engine code may run inside a UDF call, where the
        thread's own cursor is busy with the calling query."""
        with self.db.fresh_cursor() as cur:
            yield cur

    def query_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the sandboxed read-only instance (where user SQL runs)."""
        return self.db.query_cursor()

    def transaction(self, cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`body(cur)` as one lake transaction, one writer of this process at a time, retried when it
        collides with another process."""
        try:
            return self.db.transaction(cur, body)
        finally:
            self.clock.bump()

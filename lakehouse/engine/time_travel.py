"""Time travel: read-only queries that see the lake as of an earlier DuckLake snapshot.

Each requested snapshot gets its own sandboxed read-only DuckDB instance, the lake attached with DuckLake's
`SNAPSHOT_VERSION` (connection.open_sandbox): every table, view and macro then reads that snapshot, however the
query names them (qualified or not, inside views, CTEs, subqueries), which rewriting each table reference to
`AT (VERSION => n)` could not promise. The sandbox of the latest-snapshot instance is locked, so it cannot attach
more; opening an instance costs ~0.1 s, so the most recently used `KEEP` stay open. An instance in use is never
closed under its query: evicted while busy, it closes when its last cursor is returned. Cursors are pooled per instance,
and the names a profile's SQL is checked against are read once per snapshot (they never change).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lakehouse.engine.sql_scope import LakeNames
from lakehouse.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from lakehouse.engine.connection import SandboxInstance

KEEP = 4


@dataclasses.dataclass
class _Entry:
    instance: SandboxInstance
    users: int = 0
    evicted: bool = False


class SnapshotInstances:
    """Sandboxed read-only instances pinned to snapshots, the `KEEP` most recently used kept open."""

    def __init__(self, open_instance: Callable[[int], SandboxInstance], exists: Callable[[int], bool]) -> None:
        self._open = open_instance
        self._exists = exists
        self._entries: collections.OrderedDict[int, _Entry] = collections.OrderedDict()
        self._names: collections.OrderedDict[int, LakeNames] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._opening = threading.Lock()  # one instance opened at a time: a burst of requests opens each once

    @contextlib.contextmanager
    def cursor(self, snapshot: int) -> Iterator[duckdb.DuckDBPyConnection]:
        entry = self._acquire(snapshot)
        try:
            with entry.instance.borrowed() as cur:
                yield cur
        finally:
            self._release(entry)

    def lake_names(self, snapshot: int) -> LakeNames:
        """What a profile's SQL is checked against at `snapshot` (sql_scope), read once: a snapshot never changes."""
        with self._lock:
            names = self._names.pop(snapshot, None) or LakeNames()
            self._names[snapshot] = names
            while len(self._names) > KEEP:
                self._names.popitem(last=False)
        return names

    def _acquire(self, snapshot: int) -> _Entry:
        entry = self._take(snapshot)
        if entry is not None:
            return entry
        with self._opening:
            entry = self._take(snapshot)
            if entry is not None:
                return entry
            if not self._exists(snapshot):
                raise NotFound(f"the lake has no snapshot {snapshot} (journal() and ducklake_snapshots('lake') "
                               "list them)", code="snapshot_not_found", field="at_snapshot")
            entry = _Entry(self._open(snapshot), users=1)
            with self._lock:
                self._entries[snapshot] = entry
                self._evict()
            return entry

    def _take(self, snapshot: int) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(snapshot)
            if entry is not None:
                self._entries.move_to_end(snapshot)
                entry.users += 1
            return entry

    def _evict(self) -> None:
        while len(self._entries) > KEEP:
            _, old = self._entries.popitem(last=False)
            old.evicted = True
            if not old.users:
                old.instance.close()

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            done = entry.evicted and not entry.users
        if done:
            entry.instance.close()

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.evicted = True
            if not entry.users:
                entry.instance.close()

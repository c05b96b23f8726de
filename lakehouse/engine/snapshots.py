"""Which snapshot the lake is at, and what the snapshots after one did: the clock every in-memory mirror of the
lake (the read path's views, corpus states, playbooks) checks before it answers.

With a SQLite catalog (the default) the check is a stat of the catalog's files (~8 us) and, only after a commit,
one fresh read of the catalog file: so every reader sees every commit made before it, by this process or another.
Other catalogs (PostgreSQL, DuckDB) are asked through DuckLake at most every `sync_interval_s`: their readers see
other processes' commits within that bound, and this process's own at once (see `LakeClock.bump`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.extensions import load_extension
from lakehouse.engine.names import sql_string

if TYPE_CHECKING:
    from lakehouse.engine.connection import Location

# DuckLake's summary of a commit (ducklake_snapshot_changes.changes_made): `created_table:"main"."a"`,
# `inserted_into_table:15`, `dropped_table:15`, `inlined_insert:12`, ...
_REF = re.compile(r'(?:table|view):"(\w+)"\."(\w+)"|(?:table|insert|delete):(\d+)')


@dataclasses.dataclass(frozen=True)
class Change:
    """What one snapshot touched: DuckLake table ids written or dropped, and `schema.name` of what it created
    or dropped by name."""

    snapshot: int
    table_ids: frozenset[int]
    names: frozenset[str]

    @classmethod
    def parse(cls, snapshot: int, text: str) -> Change:
        ids, names = set(), set()
        for schema, name, table_id in _REF.findall(text or ""):
            if table_id:
                ids.add(int(table_id))
            else:
                names.add(f"{schema}.{name}")
        return cls(snapshot, frozenset(ids), frozenset(names))


class CatalogWatch:
    """The lake's latest snapshot id, read from its SQLite catalog only when the catalog's files changed.

    A commit always writes the catalog's files, so their size, mtime and inode (a stat, ~8 us) decide whether to
    look (~1-2 ms, through a private DuckDB connection that has the catalog attached read-only)."""

    def __init__(self, location: Location, file_lock: AbstractContextManager[Any]) -> None:
        self.path = Path(location.catalog.split(":", 1)[1]) if location.kind == "sqlite" else None
        self._file_lock = file_lock  # held by this process's commits: a read never holds the file while one needs it
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._snapshot: int | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def available(self) -> bool:
        return self.path is not None

    def snapshot(self) -> int | None:
        if self.path is None:
            return None
        with self._lock:
            signature = self._signature_now()
            if signature != self._signature:
                self._snapshot = self._read("SELECT max(snapshot_id) FROM catalog.ducklake_snapshot")[0][0]
                self._signature = signature
            return self._snapshot

    def changes(self, after: int) -> list[Change]:
        """What every snapshot after `after` did, oldest first."""
        rows = self._read("SELECT snapshot_id, changes_made FROM catalog.ducklake_snapshot_changes WHERE snapshot_id > ? "
                          "ORDER BY snapshot_id", [after])
        return [Change.parse(snapshot, text) for snapshot, text in rows]

    def tables(self) -> dict[tuple[str, str], int]:
        """(schema, table) -> DuckLake table id, of the tables alive at the latest snapshot."""
        rows = self._read("SELECT s.schema_name, t.table_name, t.table_id FROM catalog.ducklake_table t "
                          "JOIN catalog.ducklake_schema s ON s.schema_id = t.schema_id "
                          "WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL")
        return {(schema, table): table_id for schema, table, table_id in rows}

    def _signature_now(self) -> tuple[Any, ...]:
        out: list[Any] = []
        for path in (self.path, Path(f"{self.path}-wal")):
            try:
                st = os.stat(path)  # type: ignore[arg-type]
                out.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def _read(self, sql: str, params: list[Any] | None = None) -> list[Any]:
        """Through DuckDB's own sqlite extension, never Python's sqlite3: two SQLite libraries in one process
        do not see each other's POSIX locks, so one would delete the WAL index the other has mapped (SIGBUS)
        and could checkpoint under the other's transaction (https://sqlite.org/howtocorrupt.html#multiple_copies)."""
        with self._file_lock:
            if self._con is None:
                con = duckdb.connect()
                load_extension(con, "sqlite")
                con.execute(f"ATTACH {sql_string(str(self.path))} AS catalog (TYPE sqlite, READ_ONLY)")
                self._con = con
            return self._con.execute(sql, params or []).fetchall()

    def close(self) -> None:
        with self._file_lock:
            if self._con is not None:
                self._con.close()
                self._con = None


class LakeClock:
    """The latest snapshot and the changes since one, from the SQLite catalog when there is one, else DuckLake."""

    def __init__(self, location: Location, cursor: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
                 interval_s: float, file_lock: AbstractContextManager[Any]) -> None:
        self.watch = CatalogWatch(location, file_lock)
        self._cursor = cursor
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._asked_at = 0.0
        self._latest: int | None = None

    def latest(self) -> int:
        snapshot = self.watch.snapshot()
        if snapshot is not None:
            return snapshot
        with self._lock:
            if self._latest is None or time.monotonic() - self._asked_at >= self._interval_s:
                with self._cursor() as cur:
                    self._latest = cur.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
                self._asked_at = time.monotonic()
            return self._latest

    def bump(self) -> None:
        """This process committed: the next `latest` asks again (SQLite catalogs notice by themselves)."""
        self._asked_at = 0.0

    def changes(self, after: int) -> list[Change]:
        if self.watch.available:
            return self.watch.changes(after)
        with self._cursor() as cur:
            rows = cur.execute("SELECT snapshot_id, changes FROM lake.snapshots() WHERE snapshot_id > ? "
                               "ORDER BY snapshot_id", [after]).fetchall()
        return [_from_map(snapshot, changes) for snapshot, changes in rows]


def _from_map(snapshot: int, changes: dict[str, list[str]] | None) -> Change:
    """DuckLake's `snapshots().changes` map: ids for writes, `schema.name` for creates and drops by name."""
    ids, names = set(), set()
    for kind, values in (changes or {}).items():
        for value in values or []:
            if value.isdigit():
                ids.add(int(value))
            elif kind.endswith("_created") or kind.endswith("_dropped"):
                names.add(value)
    return Change(snapshot, frozenset(ids), frozenset(names))


"""The change journal: what each lake snapshot did, in `lh.journal`, written in the transaction it describes.

Every lake write goes through `catalog.in_transaction`, which runs its body through `journaled`: the body may
`note()` what it changed (dataset or corpus, rows added and removed, details), and just before COMMIT one
`lh.journal` row per note is inserted, with the operation and its caller taken from the call context
(`ops.current()`: op name, origin, profile, workflow run). A transaction run by an operation that noted
nothing still gets one row naming the op. A row and the change it describes commit together or not at all;
DuckLake's `snapshot_id` virtual column of the row is the snapshot it describes.

    SELECT * FROM journal(dataset := 'workers')      -- newest first: snapshot, op, rows added/removed, who

Not the storage journal (`observer/journal.py`: failures that touched storage, as JSONL files).
"""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

T = TypeVar("T")

DDL = """CREATE TABLE IF NOT EXISTS lake.lh.journal (
        id VARCHAR, op VARCHAR, dataset VARCHAR, corpus VARCHAR, rows_added BIGINT, rows_removed BIGINT,
        origin VARCHAR, profile VARCHAR, workflow VARCHAR, run_id VARCHAR, details VARCHAR, recorded_at TIMESTAMP)"""
# What a change feed must not report as changed rows: these ops move rows without changing what a dataset holds.
MOVES = ("dataset.compact", "storage.drain")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("snapshot_id", "BIGINT"), ("committed_at", "TIMESTAMP"), ("op", "VARCHAR"), ("dataset", "VARCHAR"),
    ("corpus", "VARCHAR"), ("rows_added", "BIGINT"), ("rows_removed", "BIGINT"), ("origin", "VARCHAR"),
    ("profile", "VARCHAR"), ("workflow", "VARCHAR"), ("run_id", "VARCHAR"), ("details", "VARCHAR"),
    ("message", "VARCHAR"), ("changes", "VARCHAR"),
)

_UNCHANGED: dict[str, Any] = {}
_NOTES: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("lakehouse_journal", default=None)


def note(*, dataset: str | None = None, corpus: str | None = None, rows_added: int = 0, rows_removed: int = 0,
         **details: Any) -> None:
    """Say what the running transaction changes (call inside a body run by `catalog.in_transaction`)."""
    notes = _NOTES.get()
    if notes is None:
        raise RuntimeError("journal.note() outside a lake transaction")
    notes.append({"dataset": dataset, "corpus": corpus, "rows_added": int(rows_added),
                  "rows_removed": int(rows_removed), "details": details or None})


def unchanged() -> None:
    """Say the running transaction changes nothing (an ingest of content already stored): no journal row, so the
    commit makes no snapshot."""
    notes = _NOTES.get()
    if notes is None:
        raise RuntimeError("journal.unchanged() outside a lake transaction")
    notes.append(_UNCHANGED)


def journaled(cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """`body(cur)`, then its journal rows, inside the caller's open transaction (each attempt starts afresh)."""
    token = _NOTES.set([])
    try:
        result = body(cur)
        _flush(cur, _NOTES.get() or [])
        return result
    finally:
        _NOTES.reset(token)


def _flush(cur: duckdb.DuckDBPyConnection, notes: list[dict[str, Any]]) -> None:
    from lakehouse.engine.ops.context import current  # the ops package imports the engine: not at import time

    caller = current()
    if (caller.op is None and not notes) or any(n is _UNCHANGED for n in notes):
        return  # engine housekeeping outside any operation (the lake's own tables), or nothing changed
    for n in notes or [{"dataset": None, "corpus": None, "rows_added": 0, "rows_removed": 0, "details": None}]:
        cur.execute("INSERT INTO lake.lh.journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [uuid.uuid4().hex, caller.op, n["dataset"], n["corpus"], n["rows_added"], n["rows_removed"],
                     caller.origin, caller.profile, caller.workflow, caller.run_id,
                     json.dumps(n["details"], default=str) if n["details"] else None])


def entries(cur: duckdb.DuckDBPyConnection, *, dataset: str | None = None, corpus: str | None = None,
            op: str | None = None, since_snapshot: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Snapshots, newest first, each with what the journal says it did. Without a dataset, corpus or op filter,
    snapshots nothing journalled (a user's own SQL, another DuckDB client) appear too, with op NULL and DuckLake's
    own summary in `changes`."""
    where, params = ["s.snapshot_id > ?"], [-1 if since_snapshot is None else since_snapshot]
    for column, value in (("dataset", dataset), ("corpus", corpus), ("op", op)):
        if value is not None:
            where.append(f"j.{column} = ?")
            params.append(value)
    rows = cur.execute(
        "SELECT s.snapshot_id, timezone('UTC', s.snapshot_time), j.op, j.dataset, j.corpus, j.rows_added, "
        "j.rows_removed, j.origin, j.profile, j.workflow, j.run_id, j.details, s.commit_message, "
        "to_json(s.changes)::VARCHAR FROM lake.snapshots() s "
        "LEFT JOIN (SELECT snapshot_id AS sid, * FROM lake.lh.journal) j ON j.sid = s.snapshot_id "
        f"WHERE {' AND '.join(where)} ORDER BY s.snapshot_id DESC, j.recorded_at, j.id LIMIT {int(limit)}",
        params).fetchall()
    return [dict(zip((c for c, _ in COLUMNS), r)) for r in rows]


def snapshots_of(cur: duckdb.DuckDBPyConnection, ops: tuple[str, ...], after: int, upto: int) -> set[int]:
    """The snapshots in (after, upto] made by any of `ops`."""
    listing = ", ".join("?" for _ in ops)
    rows = cur.execute(f"SELECT DISTINCT snapshot_id FROM lake.lh.journal WHERE op IN ({listing}) "
                       "AND snapshot_id > ? AND snapshot_id <= ?", [*ops, after, upto]).fetchall()
    return {r[0] for r in rows}

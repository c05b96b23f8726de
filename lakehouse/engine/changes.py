"""What changed in a dataset since a snapshot: DuckLake's change feed, told in the dataset's own terms.

    lake.changes("workers", since_snapshot=12)  # {"dataset", "from_snapshot", "to_snapshot", "changes": [...]}

Each change is `{snapshot_id, change_type, row}` with `change_type` one of DuckLake's: `insert`, `delete`,
`update_preimage`, `update_postimage` (an update is the pair, preimage first), in snapshot order.

- A plain dataset (one table) reads `ducklake_table_changes` over the life of each version of its table within
  the range. A version that ended inside the range (a `replace`, a widening, a drop) contributes the deletion
  of the rows it held last, at the snapshot that ended it, so a replace reads as its old rows deleted and its
  new rows inserted.
- A merge-on-read dataset (a view over `lh_store.<name>__base` + `__delta`, the newest delta row per key
  winning) changes where its visible rows change. DuckLake's feeds of base and delta say which keys each
  snapshot wrote; the rows with those keys visible just before and at that snapshot are compared: absent then
  present is an insert, present in both and different an update, present then absent a delete. The rows a
  table copies into its new base when its first delta arrives are no change.
- Snapshots that only move rows change nothing a dataset holds and are skipped: `dataset.compact` (deltas
  folded into the base) and `storage.drain` (rescued files moved back to the primary bucket), as the change
  journal (`lh.journal`) records them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import duckdb

from lakehouse.engine import journal
from lakehouse.engine.ingest_write import SEQ, merge_select
from lakehouse.engine.names import quote_ident
from lakehouse.errors import InvalidInput, NotFound

_META = "__ducklake_metadata_lake"


@dataclasses.dataclass(frozen=True)
class _Version:
    schema: str
    table: str
    begin: int
    end: int | None  # the snapshot that ended it (exclusive), None while it lives

    def alive_at(self, snapshot: int) -> bool:
        return self.begin <= snapshot and (self.end is None or snapshot < self.end)


def changes(cur: duckdb.DuckDBPyConnection, dataset: str, since: int, until: int | None = None,
            limit: int = 10_000) -> dict[str, Any]:
    latest = cur.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
    upto = latest if until is None else until
    if upto > latest:
        raise InvalidInput(f"until_snapshot {upto} is after the latest snapshot {latest}", code="invalid_snapshot")
    if since > upto:
        raise InvalidInput(f"since_snapshot {since} is after until_snapshot {upto}", code="invalid_snapshot")
    versions = _versions(cur, dataset)
    if not versions:
        raise NotFound(f"no dataset named {dataset!r} (now or in the lake's history)", code="dataset_not_found")
    feed = _Feed(cur, dataset, versions, since, upto, journal.snapshots_of(cur, journal.MOVES, since, upto))
    out = feed.collect()
    return {"dataset": dataset, "from_snapshot": since, "to_snapshot": upto, "truncated": len(out) > limit,
            "changes": out[:limit]}


def _versions(cur: duckdb.DuckDBPyConnection, dataset: str) -> list[_Version]:
    """Every table that ever held the dataset: `main.<name>`, `lh_store.<name>__base` / `__delta`."""
    rows = cur.execute(
        f"SELECT s.schema_name, t.table_name, t.begin_snapshot, t.end_snapshot FROM {_META}.ducklake_table t "
        f"JOIN {_META}.ducklake_schema s ON s.schema_id = t.schema_id "
        "WHERE (s.schema_name = 'main' AND t.table_name = ?) OR "
        "(s.schema_name = 'lh_store' AND t.table_name IN (? || '__base', ? || '__delta')) "
        "ORDER BY t.begin_snapshot", [dataset, dataset, dataset]).fetchall()
    return [_Version(*r) for r in rows]


class _Feed:
    def __init__(self, cur: duckdb.DuckDBPyConnection, dataset: str, versions: list[_Version], since: int,
                 upto: int, moves: set[int]) -> None:
        self.cur, self.dataset, self.since, self.upto, self.moves = cur, dataset, since, upto, moves
        self.tables = [v for v in versions if v.schema == "main"]
        self.bases = [v for v in versions if v.table.endswith("__base")]
        self.deltas = [v for v in versions if v.table.endswith("__delta")]
        self.out: list[tuple[int, int, int, dict[str, Any]]] = []  # (snapshot, order, seq, change)
        self._keys: dict[int, str] = {}

    def collect(self) -> list[dict[str, Any]]:
        for v in self.tables:
            self._table_version(v)
        touched: dict[int, list[str]] = {}  # snapshot -> keys a merge snapshot wrote (as text)
        for v in self.bases + self.deltas:
            for s, key in self._written_keys(v):
                touched.setdefault(s, []).append(key)
        for s in sorted(touched):
            self._diff(s, touched[s])
        for v in self.bases:  # a merge dataset replaced or dropped (not rewritten by a widening): its rows go
            if self._ended_in_range(v) and not any(b.begin == v.end for b in self.bases):
                self._all(v.end, v.end - 1)
        self.out.sort(key=lambda c: c[:3])
        return [c[3] for c in self.out]

    def _ended_in_range(self, v: _Version) -> bool:
        return v.end is not None and self.since < v.end <= self.upto

    def _life(self, v: _Version) -> tuple[int, int]:
        """The snapshots of the range in which `v` lived."""
        return max(self.since + 1, v.begin), min(self.upto, v.end - 1 if v.end is not None else self.upto)

    # -- plain tables -------------------------------------------------------------------------
    def _table_version(self, v: _Version) -> None:
        lo, hi = self._life(v)
        if lo <= hi:
            rel = self.cur.execute(
                "SELECT * FROM ducklake_table_changes('lake', 'main', ?, ?, ?) ORDER BY snapshot_id, rowid, "
                "change_type DESC", [v.table, lo, hi])
            names = [d[0] for d in rel.description]
            for i, r in enumerate(rel.fetchall()):
                if r[0] not in self.moves:
                    self._add(r[0], 0, i, r[2], dict(zip(names[3:], r[3:])))
        # replaced, widened or dropped: its last rows are deleted; turned into a merge dataset: diffed by key
        if self._ended_in_range(v) and not any(b.begin == v.end for b in self.bases):
            self._all(v.end, v.end - 1, table=v)

    # -- merge-on-read ------------------------------------------------------------------------
    def _written_keys(self, v: _Version) -> list[tuple[int, str]]:
        lo, hi = self._life(v)
        if lo > hi:
            return []
        rows = self.cur.execute(
            f"SELECT snapshot_id, CAST({quote_ident(self._key(hi))} AS VARCHAR) FROM ducklake_table_changes('lake', "
            "'lh_store', ?, ?, ?) WHERE change_type = 'insert'", [v.table, lo, hi]).fetchall()
        # Rows copied when the table was made: a base filled from the dataset's table at its first delta, or a
        # base or delta rewritten by a widening (which replaced an earlier version at that very snapshot).
        siblings = self.bases if v.table.endswith("__base") else self.deltas
        copied = v.begin if v.table.endswith("__base") or any(o.end == v.begin for o in siblings) else None
        return [(s, k) for s, k in rows if s not in self.moves and s != copied]

    def _key(self, snapshot: int) -> str:
        """The merge key at `snapshot` (from the registry as it was then: the dataset may be gone since)."""
        if snapshot not in self._keys:
            row = self.cur.execute(f"SELECT key FROM lake.lh.datasets AT (VERSION => {int(snapshot)}) WHERE name = ?",
                                   [self.dataset]).fetchone()
            if row is None or row[0] is None:
                raise InvalidInput(f"the key of merge dataset {self.dataset!r} at snapshot {snapshot} is not known",
                                   code="changes_unavailable")
            self._keys[snapshot] = row[0]
        return self._keys[snapshot]

    def _diff(self, s: int, keys: list[str]) -> None:
        name = self._key(s)
        key = quote_ident(name)
        before, after = self._state(s - 1), self._state(s)
        self.cur.execute("CREATE OR REPLACE TEMP TABLE lh_changed_keys (k VARCHAR)")
        self.cur.executemany("INSERT INTO lh_changed_keys VALUES (?)", [[k] for k in dict.fromkeys(keys)])
        pick = f"WHERE CAST({key} AS VARCHAR) IN (SELECT k FROM lh_changed_keys)"
        old = self._rows(f"SELECT * FROM ({before}) {pick}", name) if before else {}
        new = self._rows(f"SELECT * FROM ({after}) {pick}", name) if after else {}
        self.cur.execute("DROP TABLE lh_changed_keys")
        for i, k in enumerate(dict.fromkeys(keys)):
            o, n = old.get(k), new.get(k)
            if o is None and n is not None:
                self._add(s, 1, 2 * i, "insert", n)
            elif o is not None and n is None:
                self._add(s, 1, 2 * i, "delete", o)
            elif o is not None and o != n:
                self._add(s, 1, 2 * i, "update_preimage", o)
                self._add(s, 1, 2 * i + 1, "update_postimage", n)

    def _rows(self, sql: str, key: str) -> dict[str, dict[str, Any]]:
        rel = self.cur.execute(sql)
        names = [d[0] for d in rel.description]
        at = [n.lower() for n in names].index(key.lower())
        return {str(r[at]): dict(zip(names, r)) for r in rel.fetchall()}

    def _state(self, snapshot: int) -> str | None:
        """The SELECT of the dataset's visible rows at `snapshot`, or None where it did not exist."""
        base = next((v for v in self.bases if v.alive_at(snapshot)), None)
        delta = next((v for v in self.deltas if v.alive_at(snapshot)), None)
        if base is not None and delta is not None:  # made and dropped together
            columns = [{"name": c[0]} for c in self.cur.execute(
                f"DESCRIBE SELECT * FROM lake.lh_store.{quote_ident(base.table)} AT (VERSION => {int(snapshot)})"
            ).fetchall()]
            return merge_select(f"(SELECT * FROM lake.lh_store.{quote_ident(base.table)} AT (VERSION => "
                                f"{int(snapshot)}))",
                                f"(SELECT * FROM lake.lh_store.{quote_ident(delta.table)} AT (VERSION => "
                                f"{int(snapshot)}))", self._key(snapshot), columns)
        table = next((v for v in self.tables if v.alive_at(snapshot)), None)
        if table is not None:
            return f"SELECT * FROM lake.main.{quote_ident(table.table)} AT (VERSION => {int(snapshot)})"
        return None

    def _all(self, s: int, at: int, table: _Version | None = None) -> None:
        """Every row the dataset (or one table version) held at `at`, deleted at snapshot `s`."""
        sql = f"SELECT * FROM lake.main.{quote_ident(table.table)} AT (VERSION => {int(at)})" if table \
            else self._state(at)
        if sql is None:
            return
        rel = self.cur.execute(sql)
        names = [d[0] for d in rel.description]
        for i, r in enumerate(rel.fetchall()):
            self._add(s, -1, i, "delete", dict(zip(names, r)))

    def _add(self, snapshot: int, order: int, seq: int, change_type: str, row: dict[str, Any]) -> None:
        row.pop(SEQ, None)
        self.out.append((snapshot, order, seq, {"snapshot_id": snapshot, "change_type": change_type, "row": row}))

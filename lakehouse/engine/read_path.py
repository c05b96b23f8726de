"""The read-only path without the catalog tax: views over each dataset's Parquet files, pinned to the lake's
latest snapshot and rebuilt the moment it changes.

DuckLake reads its catalog at the start of every transaction (~3-5 ms with the SQLite catalog, six metadata
queries), which more than doubles a short query over a lake table. The sandboxed read-only instance (the path
of `Lake.query`, `/sql`, corpus definitions and `where` filters) therefore keeps, in its own memory database,
one view per dataset over exactly the files DuckLake lists for it, with DuckLake's column types; its search path
finds those views before `lake.main`. Before every read-only query, `CatalogWatch` reads the latest snapshot id
from the SQLite catalog (~10 us; any process's commit moves it); when it moved, the views of datasets the new
snapshots touched are rebuilt in one DuckDB transaction (readers bind to the old or
the new set, never a mix). So a read never sees an older snapshot than the last commit before it, whichever
process made it.

A dataset is mirrored only when its files are the whole truth: no delete files, and the Parquet row count equals
DuckLake's (rows inlined in the catalog would be missed otherwise). Any other dataset, any qualified name
(`lake.main.t`), and lakes whose catalog is not a SQLite file (PostgreSQL, DuckDB) read through DuckLake as
before. The read-write cursor (`lake.sql`) always reads through DuckLake.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ingest_write import merge_select
from lakehouse.engine.names import quote_ident, sql_string

if TYPE_CHECKING:
    from lakehouse.engine.connection import Location

log = logging.getLogger(__name__)

_TABLE_REF = re.compile(r'(?:table|view):"(\w+)"\."(\w+)"|(?:table|into_table|from_table|insert|delete):(\d+)')


class CatalogWatch:
    """The lake's latest snapshot id, read from its SQLite catalog only when the catalog's files changed.

    DuckDB's sqlite extension keeps its WAL index in memory (there is no -shm file), so another connection sees
    new commits only when it opens afresh (~1 ms). A commit always writes the catalog's files, so their size,
    mtime and inode (a stat, ~8 us) decide whether to look."""

    def __init__(self, location: Location) -> None:
        self.path = Path(location.catalog.split(":", 1)[1]) if location.kind == "sqlite" else None
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._snapshot: int | None = None

    @property
    def available(self) -> bool:
        return self.path is not None

    def snapshot(self) -> int | None:
        if self.path is None:
            return None
        with self._lock:
            signature = self._signature_now()
            if signature != self._signature:
                self._snapshot = self._read("SELECT max(snapshot_id) FROM ducklake_snapshot")[0][0]
                self._signature = signature
            return self._snapshot

    def changes(self, after: int) -> list[str]:
        """The `changes_made` of every snapshot after `after` (DuckLake's own summary of what each commit did)."""
        rows = self._read("SELECT changes_made FROM ducklake_snapshot_changes WHERE snapshot_id > ? "
                          "ORDER BY snapshot_id", [after])
        return [r[0] or "" for r in rows]

    def tables(self) -> dict[tuple[str, str], int]:
        """(schema, table) -> DuckLake table id, of the tables alive at the latest snapshot."""
        rows = self._read("SELECT s.schema_name, t.table_name, t.table_id FROM ducklake_table t JOIN ducklake_schema s "
                          "ON s.schema_id = t.schema_id WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL")
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
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


class ReadMirror:
    """The views, kept at the latest snapshot (`sync` before each read-only query)."""

    def __init__(self, watch: CatalogWatch, macro_db: str) -> None:
        self.watch = watch
        self.macro_db = macro_db
        self._snapshot: int | None = None
        self._views: dict[str, frozenset[int]] = {}  # dataset -> the DuckLake table ids its view reads
        self._unmirrored: dict[str, frozenset[int]] = {}  # datasets whose files are not the whole truth, until touched
        self._lock = threading.Lock()

    def sync(self, con: duckdb.DuckDBPyConnection) -> None:
        snapshot = self.watch.snapshot()
        if snapshot is None or snapshot == self._snapshot:
            return
        with self._lock:
            if snapshot == self._snapshot:
                return
            changes = self.watch.changes(self._snapshot) if self._snapshot is not None else None
            cur = con.cursor()
            try:
                self._rebuild(cur, changes)
            except duckdb.Error:  # never a reason to fail the query: it reads through DuckLake instead
                log.warning("the read path's views could not be rebuilt; reading through DuckLake", exc_info=True)
                self._drop_all(cur)
            finally:
                cur.close()
            self._snapshot = snapshot

    def _rebuild(self, cur: duckdb.DuckDBPyConnection, changes: list[str] | None) -> None:
        cur.execute("BEGIN")
        try:
            tables = self.watch.tables()
            datasets = _datasets(cur)
            touched = None if changes is None else _touched(changes, {**self._views, **self._unmirrored})
            stale = [n for n in self._views if n not in datasets or touched is None or n in touched]
            for name in stale:
                self._drop(cur, name)
            self._unmirrored = {n: ids for n, ids in self._unmirrored.items()
                                if n in datasets and touched is not None and n not in touched}
            for name, meta in datasets.items():
                if name not in self._views and name not in self._unmirrored:
                    self._mirror(cur, name, meta, tables)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _mirror(self, cur: duckdb.DuckDBPyConnection, name: str, meta: dict[str, Any],
                tables: dict[tuple[str, str], int]) -> None:
        parts = [("lh_store", f"{name}__base"), ("lh_store", f"{name}__delta")] if meta["kind"] == "merge" \
            else [("main", name)]
        ids = frozenset(tables[p] for p in parts if p in tables)
        selects = [_files_select(cur, schema, table) if (schema, table) in tables else None for schema, table in parts]
        if None in selects:
            self._unmirrored[name] = ids
            return
        if meta["kind"] == "merge":
            body = merge_select(f"({selects[0]})", f"({selects[1]})", meta["key"], meta["columns"])
        else:
            body = selects[0]
        cur.execute(f"CREATE OR REPLACE VIEW {quote_ident(self.macro_db)}.main.{quote_ident(name)} AS {body}")
        self._views[name] = ids

    def _drop(self, cur: duckdb.DuckDBPyConnection, name: str) -> None:
        cur.execute(f"DROP VIEW IF EXISTS {quote_ident(self.macro_db)}.main.{quote_ident(name)}")
        del self._views[name]

    def _drop_all(self, cur: duckdb.DuckDBPyConnection) -> None:
        for name in list(self._views):
            try:
                self._drop(cur, name)
            except duckdb.Error:
                self._views.pop(name, None)


def _datasets(cur: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    present = {r[0] for r in cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'main' "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = 'lake' AND schema_name = 'main'"
    ).fetchall()}
    rows = cur.execute("SELECT name, kind, key, columns FROM lake.lh.datasets").fetchall()
    return {n: {"kind": k, "key": key, "columns": json.loads(cols)} for n, k, key, cols in rows if n in present}


def _touched(changes: list[str], known: dict[str, frozenset[int]]) -> set[str]:
    """Datasets whose files a run of commits may have changed: named in a create/drop, or whose table id appears
    ("*" when a change could not be read: then every dataset is)."""
    names: set[str] = set()
    ids: set[int] = set()
    for text in changes:
        for schema, name, table_id in _TABLE_REF.findall(text):
            if table_id:
                ids.add(int(table_id))
            elif schema in ("main", "lh_store"):
                names.add(name.split("__")[0])
    names |= {n for n, table_ids in known.items() if table_ids & ids}
    return names if names or ids or not changes else {"*"}


def _files_select(cur: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    """A SELECT of the table's rows from its Parquet files, in DuckLake's column types, or None when the files are
    not the whole table (delete files, rows inlined in the catalog)."""
    files = cur.execute("SELECT data_file, delete_file FROM ducklake_list_files('lake', ?, schema => ?)",
                        [table, schema]).fetchall()
    if any(delete is not None for _, delete in files):
        return None
    columns = cur.execute(f"DESCRIBE lake.{schema}.{quote_ident(table)}").fetchall()
    typed = ", ".join(f"CAST({quote_ident(c[0])} AS {c[1]}) AS {quote_ident(c[0])}" for c in columns)
    if not files:
        empty = ", ".join(f"CAST(NULL AS {c[1]}) AS {quote_ident(c[0])}" for c in columns)
        return f"SELECT {empty} WHERE false"
    listing = "[" + ", ".join(sql_string(f) for f, _ in files) + "]"
    in_files = cur.execute(f"SELECT count(*) FROM read_parquet({listing})").fetchone()[0]
    in_lake = cur.execute(f"SELECT count(*) FROM lake.{schema}.{quote_ident(table)}").fetchone()[0]
    if in_files != in_lake:
        return None
    return f"SELECT {typed} FROM read_parquet({listing})"

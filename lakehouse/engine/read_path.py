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
import threading
from typing import Any

import duckdb

from lakehouse.engine.ingest_write import merge_select
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.engine.snapshots import CatalogWatch, Change

log = logging.getLogger(__name__)

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

    def _rebuild(self, cur: duckdb.DuckDBPyConnection, changes: list[Change] | None) -> None:
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


def _touched(changes: list[Change], known: dict[str, frozenset[int]]) -> set[str]:
    """Datasets whose files a run of commits may have changed: named in a create/drop, or whose table id appears."""
    names = {name.split(".", 1)[1].split("__")[0] for c in changes for name in c.names
             if name.split(".", 1)[0] in ("main", "lh_store")}
    ids = {i for c in changes for i in c.table_ids}
    return names | {n for n, table_ids in known.items() if table_ids & ids}


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

"""Corpora that follow their dataset: every ingest into a dataset (append, delta, replace, compact) reaches the
corpora built from it, through DuckLake's change feed.

`lh.corpus_sync` records, per following corpus, the lake snapshot it reflects and the DuckLake tables it was read
from. A sync reads the change feed of those tables from that snapshot to the latest, re-reads the dataset's
current rows for every id the changes touched, and writes the corpus: rows whose text or metadata changed are
re-embedded (through the embedding cache, so a text embedded before costs a lookup), rows that are gone are
removed; a merge-on-read dataset's newest delta row wins because the dataset's own view is what is re-read. When
the dataset's tables are not the ones recorded (replaced, or turned into a merge view) the whole dataset is
read again. A failed sync never undoes the ingest that triggered it: the corpus keeps the snapshot it reached
and the error, `lag` says how many commits it is behind, and `sync(name)` catches up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa

from lakehouse.engine.names import quote_ident
from lakehouse.engine.vectors import store
from lakehouse.errors import InvalidInput, LakehouseError, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext
    from lakehouse.engine.vectors.engine import VectorEngine

log = logging.getLogger(__name__)


def rows_from_table(tbl: pa.Table, id_col: str, text_cols: Sequence[str], meta_cols: Sequence[str]) -> list[dict[str, Any]]:
    """A dataset's (or a query's) rows as corpus rows: `{id, text, metadata}`, text the non-empty text columns
    joined by '. '."""
    names = {n.lower(): n for n in tbl.column_names}
    for col in [id_col, *text_cols, *meta_cols]:
        if col.lower() not in names:
            raise InvalidInput(f"column {col!r} is not in the corpus source (columns: {', '.join(tbl.column_names)})",
                               code="missing_column")
    ids = tbl.column(names[id_col.lower()]).to_pylist()
    parts = [tbl.column(names[c.lower()]).to_pylist() for c in text_cols]
    metas = {c: tbl.column(names[c.lower()]).to_pylist() for c in meta_cols}
    out = []
    for i, ident in enumerate(ids):
        text = ". ".join(str(p[i]) for p in parts if p[i] not in (None, ""))
        out.append({"id": ident, "text": text, "metadata": {c: metas[c][i] for c in meta_cols}})
    return out


class Follower:
    def __init__(self, ctx: EngineContext, vectors: VectorEngine) -> None:
        self.ctx = ctx
        self.vectors = vectors

    def start(self, corpus: str, dataset: str, snapshot: int) -> None:
        """Record that `corpus` follows `dataset` from `snapshot` (what its rows were read at, or before)."""
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            tables = sorted(_tables(cur, dataset).values())
            self.ctx.transaction(cur, lambda c: _save(c, corpus, dataset, snapshot, tables, None))

    def sync_dataset(self, dataset: str) -> dict[str, Any]:
        """Sync every corpus following `dataset`: {corpus: result or {"error": {code, message}}}."""
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            names = [r[0] for r in cur.execute("SELECT corpus FROM lake.lh.corpus_sync WHERE dataset = ? "
                                               "ORDER BY corpus", [dataset]).fetchall()]
        out: dict[str, Any] = {}
        for name in names:
            try:
                out[name] = self.sync(name)
            except LakehouseError as exc:  # the ingest stands; the corpus says how far it got
                log.warning("corpus %s could not follow dataset %s: %s", name, dataset, exc.message)
                out[name] = {"error": {"code": exc.code, "message": exc.message}}
        return out

    def sync(self, corpus: str) -> dict[str, Any]:
        """Bring `corpus` to the latest snapshot of its dataset; {corpus, dataset, from, to, added, removed}."""
        latest = self.ctx.clock.latest()
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            row = cur.execute("SELECT dataset, snapshot, tables FROM lake.lh.corpus_sync WHERE corpus = ?",
                              [corpus]).fetchone()
            if row is None:
                raise NotFound(f"corpus {corpus!r} does not follow a dataset", code="corpus_not_following")
            dataset, since, recorded = row[0], int(row[1]), json.loads(row[2])
            out = {"corpus": corpus, "dataset": dataset, "from": since, "to": latest, "added": 0, "removed": 0}
            if since >= latest:
                return out
            found = _tables(cur, dataset)
            tables = sorted(found.values())
            if not tables:
                err = NotFound(f"dataset {dataset!r} of corpus {corpus!r} is gone", code="dataset_not_found")
                self.ctx.transaction(cur, lambda c: _save(c, corpus, dataset, since, recorded, err))
                raise err
            meta = self.vectors.state(corpus).meta["source"]
            try:
                if tables != recorded:  # replaced, or turned into a merge view: read it whole
                    current = self._read(cur, dataset, meta, None)
                    gone = sorted(set(self.vectors.state(corpus).ids_alive()) - {str(r["id"]) for r in current})
                else:
                    touched = _touched_ids(cur, found, meta["id"], since + 1, latest)
                    current = self._read(cur, dataset, meta, touched) if touched else []
                    gone = sorted(set(touched) - {str(r["id"]) for r in current})
                changed = self._changed(corpus, current)
                if changed:
                    self.vectors.add_to_corpus(corpus, changed)
                if gone:
                    self.vectors.remove_from_corpus(corpus, gone)
            except LakehouseError as exc:
                failure = exc
                self.ctx.transaction(cur, lambda c: _save(c, corpus, dataset, since, recorded, failure))
                raise
            self.ctx.transaction(cur, lambda c: _save(c, corpus, dataset, latest, tables, None))
        out.update(added=len(changed), removed=len(gone))
        return out

    def status(self) -> dict[str, dict[str, Any]]:
        """corpus -> {dataset, synced_snapshot, lag (commits to the dataset not reflected yet), error}."""
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            rows = cur.execute("SELECT corpus, dataset, snapshot, tables, error FROM lake.lh.corpus_sync").fetchall()
        if not rows:
            return {}
        changes = self.ctx.clock.changes(min(int(r[2]) for r in rows))
        out = {}
        for corpus, dataset, snapshot, tables, error in rows:
            ids = set(json.loads(tables))
            lag = sum(1 for c in changes if c.snapshot > snapshot and (c.table_ids & ids or any(
                n in c.names for n in (f"main.{dataset}", f"lh_store.{dataset}__base", f"lh_store.{dataset}__delta"))))
            out[corpus] = {"dataset": dataset, "synced_snapshot": int(snapshot), "lag": lag,
                           "error": json.loads(error) if error else None}
        return out

    def _read(self, cur: duckdb.DuckDBPyConnection, dataset: str, meta: dict[str, Any],
              ids: list[str] | None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM lake.main.{dataset}"
        if ids is not None:
            sql += f" WHERE {quote_ident(meta['id'])}::VARCHAR IN (SELECT unnest(?))"
        tbl = store.fetch_table(cur, sql, [ids] if ids is not None else None)
        return rows_from_table(tbl, meta["id"], meta["text"], meta["metadata"])

    def _changed(self, corpus: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows whose text or metadata differ from what the corpus holds (an unchanged row is not rewritten)."""
        state = self.vectors.state(corpus)
        out = []
        for r in rows:
            key = state.key_of(r["id"])
            meta = orjson.dumps(r.get("metadata") or {}, default=str).decode()
            if key is None or state.texts[key] != r["text"] or state.metas[key] != meta:
                out.append(r)
        return out


def _tables(cur: duckdb.DuckDBPyConnection, dataset: str) -> dict[tuple[str, str], int]:
    """The DuckLake tables that hold a dataset's rows (one table, or a merge view's base and delta): name -> id."""
    return store.table_ids(cur, [("main", dataset), ("lh_store", f"{dataset}__base"), ("lh_store", f"{dataset}__delta")])


def _touched_ids(cur: duckdb.DuckDBPyConnection, tables: dict[tuple[str, str], int], id_col: str, start: int,
                 end: int) -> list[str]:
    """The id values (as text) of every row the change feed of `tables` shows inserted or deleted."""
    found: set[str] = set()
    for schema, table in tables:
        rows = cur.execute(f"SELECT DISTINCT {quote_ident(id_col)}::VARCHAR FROM "
                           "ducklake_table_changes('lake', ?, ?, ?, ?)", [schema, table, start, end]).fetchall()
        found.update(r[0] for r in rows if r[0] is not None)
    return sorted(found)


def _save(cur: duckdb.DuckDBPyConnection, corpus: str, dataset: str, snapshot: int, tables: list[int],
          error: LakehouseError | None) -> None:
    cur.execute("DELETE FROM lake.lh.corpus_sync WHERE corpus = ?", [corpus])
    cur.execute("INSERT INTO lake.lh.corpus_sync VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [corpus, dataset, snapshot, json.dumps(tables),
                 None if error is None else json.dumps({"code": error.code, "message": error.message})])

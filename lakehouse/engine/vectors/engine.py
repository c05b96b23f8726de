"""`VectorEngine`: corpora, embeddings and search for one lake (`lake.vectors`).

It takes the lake's narrow `EngineContext` (settings, cursors, transactions, journal). Input rules
(names, limits, read-only SQL) are the operations catalog's: these methods trust their arguments'
types and check only what depends on the data (dimensions, finite vectors, ids that collide as text).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from lakehouse.engine import journal
from lakehouse.engine.embedders import get_embedder
from lakehouse.engine.embedders.base import Embedder, l2_normalise
from lakehouse.engine.vectors import fusion as fusion_mod
from lakehouse.engine.vectors import hnsw, store, text_index, trials
from lakehouse.engine.vectors.corpus import CorpusState, Generation
from lakehouse.engine.vectors.hits import Hit, to_hits
from lakehouse.errors import Conflict, InvalidInput, NotFound, TooManyRequests, map_duckdb_errors

if TYPE_CHECKING:
    from usearch.index import Index

    from lakehouse.engine.context import EngineContext

log = logging.getLogger(__name__)

BULK_ROWS = 10_000  # an add this large (and larger than the index) builds a new generation in parallel
PARALLEL_ADD_ROWS = 2_000  # from this many rows, an add inserts into the graph on every core


class VectorEngine:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._states: dict[str, CorpusState] = {}
        self._states_lock = threading.Lock()
        self.text_indexes: dict[str, text_index.TextIndex] = {}  # corpus -> BM25 index (text_index.index_for)

    # -- embeddings ----------------------------------------------------------------------
    def embedder(self, spec: str | None = None) -> Embedder:
        return get_embedder(spec or self.ctx.settings.embedder, self.ctx.settings)

    def embed(self, texts: Sequence[str], spec: str | None = None, *, cache: bool = True,
              progress: bool | None = None) -> np.ndarray:
        """Embed texts; with `cache`, texts embedded before by the same embedder cost a lookup."""
        emb = self.embedder(spec)
        if not cache or not texts:
            return emb.embed(list(texts), progress=progress)
        shas = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        unique = list(dict.fromkeys(shas))
        found: dict[str, np.ndarray] = {}
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            cur.register("lh_wanted", pa.table({"sha256": unique}))
            tbl = store.fetch_table(
                cur, "SELECT c.sha256, c.embedding FROM lake.lh.embedding_cache c JOIN lh_wanted w USING (sha256) "
                "WHERE c.embedder_id = ?", [emb.id])
            cur.unregister("lh_wanted")
            if tbl.num_rows:
                found = dict(zip(tbl.column("sha256").to_pylist(), store.matrix(tbl.column("embedding"), emb.dim)))
            first_text = {s: t for s, t in zip(reversed(shas), reversed(list(texts)))}
            missing = [s for s in unique if s not in found]
            if missing:
                fresh = emb.embed([first_text[s] for s in missing], progress=progress)
                found.update(zip(missing, fresh))
                cur.register("lh_new", pa.table({
                    "sha256": missing,
                    "embedding": store.list_array(fresh),
                }))
                self.ctx.transaction(cur, lambda c: (journal.note(cached_embeddings=len(missing)), c.execute(
                    "INSERT INTO lake.lh.embedding_cache SELECT ?, sha256, embedding FROM lh_new", [emb.id])))
                cur.unregister("lh_new")
        return np.stack([found[s] for s in shas]).astype(np.float32, copy=False)

    # -- corpora -------------------------------------------------------------------------
    def create_corpus(self, name: str, *, rows: Sequence[dict[str, Any]] | pa.Table, source: dict[str, Any],
                      embedder: str | None = None, metric: str = "cos", dtype: str | None = None,
                      params: dict[str, Any] | None = None, kind: str = "table", builder: str = "rows",
                      replace: bool = False, progress: bool | None = None) -> dict[str, Any]:
        """Build a corpus from ready rows `{id, text, metadata?}`: embed the text, store rows in the lake and
        register the corpus in ONE transaction (a failure leaves nothing behind, or the replaced corpus as it
        was), then build the HNSW index (`dtype` default: i8 re-scored for cos corpora, f16 for the others)."""
        dtype = dtype or hnsw.default_dtype(metric)
        hnsw.check_dtype(metric, dtype)
        emb = self.embedder(embedder)
        meta = {
            "name": name, "embedder": embedder or self.ctx.settings.embedder, "embedder_id": emb.id,
            "dim": emb.dim, "metric": metric, "dtype": dtype, "source": source, "kind": kind, "builder": builder,
            "params": {**hnsw.DEFAULT_PARAMS, **(params or {})},
        }
        state = CorpusState(meta)
        state.loaded = True
        batch = self._batch(state, rows, None, progress)
        before = self.ctx.clock.latest()
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            existed = store.corpus_row(cur, name) is not None
            if existed and not replace:
                raise Conflict(f"corpus {name!r} exists; drop it or pass replace=True", code="corpus_exists")

            def register(cur: duckdb.DuckDBPyConnection) -> None:
                if existed:
                    store.drop(cur, name)
                cur.execute(f"CREATE TABLE {store.table(name)} (key BIGINT, id VARCHAR, text VARCHAR, "
                            "metadata VARCHAR, embedding FLOAT[])")
                cur.execute("INSERT INTO lake.lh.corpora VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, "
                            "now()::TIMESTAMP)",
                            [name, meta["embedder"], emb.id, emb.dim, metric, dtype, json.dumps(source, default=str),
                             kind, builder, json.dumps(meta["params"])])
                cur.execute(f"INSERT INTO {store.table(name)} SELECT * FROM lh_batch")
                journal.note(corpus=name, rows_added=len(batch.ids), replaced=existed)

            cur.register("lh_batch", batch.table)
            try:
                self.ctx.transaction(cur, register)
            finally:
                cur.unregister("lh_batch")
        if existed:
            self._forget(name)
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            state.table_id = store.table_id(cur, name)
        state.synced = _synced_after(self.ctx.clock.latest(), before)
        state.put(batch.keys, batch.vectors, batch.ids, batch.texts, batch.metas)
        with self._states_lock:
            self._states[name] = state
        self._build_generation(state)
        return self.describe(name)

    def add_to_corpus(self, name: str, rows: Sequence[dict[str, Any]] | pa.Table,
                      embeddings: np.ndarray | None = None, *, progress: bool | None = None) -> dict[str, Any]:
        """Add or replace rows `{id, text, metadata?}` (same id: the new row wins).

        Keys come from the lake, inside the write's transaction: the transaction also touches the corpus's
        registry row, so two processes adding at once conflict, and the one that retries reads the keys the
        other took. Rows replaced by id are deleted in the same transaction, whatever this process knew of them."""
        state = self.state(name)
        batch = self._batch(state, rows, embeddings, progress)
        table = store.table(name)
        with state.lock:
            self._follow(state)
            before = state.synced
            replaced = state.keys_of_texts(batch.ids)
            with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                def write(cur: duckdb.DuckDBPyConnection) -> int:
                    cur.execute("UPDATE lake.lh.corpora SET updated_at = now()::TIMESTAMP WHERE name = ?", [name])
                    # only keys from this state's next one up can raise it: DuckLake skips the files whose key
                    # statistics are below it (a full scan of a 100K corpus costs ~20 ms a write, ~8 ms this way)
                    base = int(cur.execute(f"SELECT coalesce(max(key) + 1, ?) FROM {table} WHERE key >= ?",
                                           [state.next_key, state.next_key]).fetchone()[0])
                    removed = cur.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM lh_batch)").fetchone()[0]
                    cur.execute(f"INSERT INTO {table} SELECT key + ?, id, text, metadata, embedding FROM lh_batch",
                                [base])
                    journal.note(corpus=name, rows_added=len(batch.ids), rows_removed=int(removed))
                    return base

                cur.register("lh_batch", batch.table)
                try:
                    base = self.ctx.transaction(cur, write)
                finally:
                    cur.unregister("lh_batch")
            keys = batch.keys + base
            state.kill(replaced)
            state.put(keys, batch.vectors, batch.ids, batch.texts, batch.metas)
            state.synced = _synced_after(self.ctx.clock.latest(), before)
            gen = state.generation
            if gen is not None and len(keys) > max(BULK_ROWS, len(gen.index)):
                self._build_generation(state)  # a bulk load: one parallel build beats incremental inserts
            elif gen is not None:
                # one thread for small batches, so adds to several corpora use the cores in parallel
                threads = 1 if len(keys) < PARALLEL_ADD_ROWS else (self.ctx.settings.threads or 0)
                gen.index.add(keys, batch.vectors, threads=threads)
        return {"corpus": name, "added": len(batch.ids), "replaced": int(len(replaced)), "rows": state.size}

    def _batch(self, state: CorpusState, rows: Sequence[dict[str, Any]] | pa.Table, embeddings: np.ndarray | None,
               progress: bool | None) -> _Batch:
        """Rows checked, repeated ids resolved (the last row of a batch wins), embedded (or the given vectors
        checked): everything that can fail before the lake is touched."""
        if isinstance(rows, pa.Table):
            rows = rows.to_pylist()
        rows = [_check_row(r, i) for i, r in enumerate(rows)]
        ids = _text_ids([r["id"] for r in rows])
        last = {ident: i for i, ident in enumerate(ids)}
        order = sorted(last.values())
        if embeddings is None:
            vectors = self.embed([rows[i]["text"] for i in order], state.meta["embedder"], progress=progress)
        else:
            vectors = np.asarray(embeddings, dtype=np.float32)
            if vectors.shape != (len(rows), state.dim):
                raise InvalidInput(f"embeddings must have shape ({len(rows)}, {state.dim}), got {vectors.shape}",
                                   code="invalid_embeddings")
            if not np.isfinite(vectors).all():
                raise InvalidInput("embeddings hold NaN or infinite values", code="invalid_embeddings")
            vectors = vectors[order]
            if state.metric == "cos":
                vectors = l2_normalise(vectors.copy())  # a copy: never rescale the caller's array
        rows = [rows[i] for i in order]
        # orjson: ~5x faster than json.dumps, which held the GIL for ~10 % of an add (compact JSON text)
        metas = [orjson.dumps(r.get("metadata") or {}, default=str).decode() for r in rows]
        return _Batch([ids[i] for i in order], [r["text"] for r in rows], metas, vectors,
                      np.arange(len(order), dtype=np.int64))

    def remove_from_corpus(self, name: str, ids: Sequence[Any]) -> int:
        state = self.state(name)
        with state.lock:
            keys = state.keys_for_ids(list(ids))
            if len(keys):
                with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                    self.ctx.transaction(cur, lambda c: c.execute(
                        f"DELETE FROM {store.table(name)} WHERE key IN (SELECT unnest(?))", [keys.tolist()]))
                state.kill(keys)
        return int(len(keys))

    def drop_corpus(self, name: str) -> None:
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            if store.corpus_row(cur, name) is None:
                raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
            rows = store.row_counts(cur, [name])[name]
            self.ctx.transaction(cur, lambda c: (journal.note(corpus=name, rows_removed=rows), store.drop(c, name)))
        self._forget(name)

    def _forget(self, name: str) -> None:
        """Drop what this process derived from a corpus that is gone (state, BM25 index, sidecars)."""
        with self._states_lock:
            self._states.pop(name, None)
        text_index.forget(self, name)
        for f in store.sidecar_path(self.ctx.root, name, 0).parent.glob("*.usearch"):
            hnsw.remove_local(f)

    def exists(self, name: str) -> bool:
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            return store.corpus_row(cur, name) is not None

    def corpora(self) -> list[dict[str, Any]]:
        """Every corpus as `describe` gives it, read in three queries (not three per corpus)."""
        return self._describe(None)

    def describe(self, name: str) -> dict[str, Any]:
        found = self._describe(name)
        if not found:
            raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
        return found[0]

    def _describe(self, name: str | None) -> list[dict[str, Any]]:
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            metas = store.corpus_rows(cur, name)
            if not metas:
                return []
            counts = store.row_counts(cur, [m["name"] for m in metas])
            gens = store.generations(cur, name)
        by_corpus: dict[str, list[dict[str, Any]]] = {}
        for g in gens:
            by_corpus.setdefault(g["corpus"], []).append(g)
        out = []
        for meta in metas:
            mine = by_corpus.get(meta["name"], [])
            active = store.active_of(mine)
            out.append({**meta, "rows": counts[meta["name"]], "active_generation": active["generation"] if active else None,
                        "generations": [{k: g[k] for k in ("generation", "snapshot_id", "rows", "built_at", "active")}
                                        for g in mine]})
        return out

    # -- index generations ---------------------------------------------------------------
    def state(self, name: str) -> CorpusState:
        """The corpus's in-memory state, loaded (and its index checked) on first use."""
        with self._states_lock:
            state = self._states.get(name)
            if state is None:
                with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                    meta = store.corpus_row(cur, name)
                if meta is None:
                    raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
                state = self._states[name] = CorpusState(meta)
        if not state.loaded:
            with state.lock:
                if not state.loaded:
                    self._load(state)
        if not self._follow(state):  # the corpus was dropped or replaced by another process: load it afresh
            with self._states_lock:
                if self._states.get(name) is state:
                    del self._states[name]
            return self.state(name)
        return state

    def _follow(self, state: CorpusState) -> bool:
        """Bring the state to the lake's latest snapshot (rows another process added or removed since it was
        synced; ~8 us when nothing was committed). False when the corpus's table itself is gone or new."""
        latest = self.ctx.clock.latest()
        if state.synced == latest:
            return True
        with state.lock:
            if state.synced is not None and state.synced >= latest:
                return True
            since = -1 if state.synced is None else state.synced
            changes = [c for c in self.ctx.clock.changes(since) if c.snapshot <= latest]
            if any(f"{store.SCHEMA}.{state.name}" in c.names for c in changes):
                return False
            if any(state.table_id in c.table_ids for c in changes):
                with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                    found = store.changes(cur, state.name, since + 1, latest, state.dim)
                _apply(state, *found)
            state.synced = latest
        return True

    def _load(self, state: CorpusState) -> None:
        synced = self.ctx.clock.latest()  # before reading: what committed meanwhile is replayed (idempotently)
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            keys, vectors, rows = store.load_rows(cur, state.name, state.dim)
            active = store.active_generation(cur, state.name)
            state.table_id = store.table_id(cur, state.name)
        state.synced = synced
        state.put(keys, vectors, rows.column("id"), rows.column("text"), rows.column("metadata"))
        state.loaded = True
        if active is None:
            self._build_generation(state)
            return
        index, problem = self._sidecar(state, active)
        if index is None:  # missing or corrupt sidecar: journalled, then rebuilt from the lake table
            self.ctx.journal.record(f"sidecar_{problem}", state.name,
                                    f"index generation {active['generation']} of corpus {state.name!r} is {problem} "
                                    "on disk; rebuilt from the lake table", generation=active["generation"])
            self._build_generation(state)
            return
        state.generation = Generation(active["generation"], index, active["max_key"], active["path"])
        _catch_up(state, index, active["max_key"])

    def _sidecar(self, state: CorpusState, gen: dict[str, Any]) -> tuple[Index | None, str]:
        """Generation `gen`'s index on this node, or (None, "missing" / "corrupt").

        Sidecars are local to each node (`<root>/indexes`); the catalog names the file of the node that built the
        generation. Built here: that file, checked against the catalog's checksum. Built by another node (another
        root, another machine): this node's own copy of the same generation, made once from the lake table (the
        live rows up to the generation's max_key; later rows are caught up like on any load) and checked against
        the checksum kept beside it. So a second node uses the generation the first one built, without writing
        a new generation to the shared catalog."""
        local = store.sidecar_path(self.ctx.root, state.name, gen["generation"])
        expansion = gen["params"]["expansion_search"]
        if Path(gen["path"]) == local:
            return hnsw.load(local, gen["sha256"], expansion_search=expansion)
        index, _ = hnsw.load_local_copy(local, expansion_search=expansion)
        if index is None:
            keys = np.flatnonzero(state.live[:gen["max_key"] + 1]).astype(np.int64)
            index = hnsw.build(state.vectors[keys], keys, metric=state.metric, dtype=state.meta["dtype"],
                               params=gen["params"], threads=self.ctx.settings.threads)
            hnsw.save_local_copy(index, local)
            log.info("corpus %s: made this node's copy of index generation %d (%d rows)", state.name,
                     gen["generation"], len(keys))
        return index, ""

    def _build_generation(self, state: CorpusState) -> dict[str, Any]:
        with state.lock:
            params = state.meta["params"]
            keys = np.flatnonzero(state.live).astype(np.int64)
            t0 = time.perf_counter()
            index = hnsw.build(state.vectors[keys], keys, metric=state.metric, dtype=state.meta["dtype"],
                               params=params, threads=self.ctx.settings.threads)
            build_s = time.perf_counter() - t0
            max_key = int(keys.max()) if len(keys) else -1
            recall, sample = trials.measure_recall(state, index, max_key, self.ctx.settings.hnsw_trial_sample)
            with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                gens = store.generations(cur, state.name)
                number = 1 + max((g["generation"] for g in gens), default=0)
                path = store.sidecar_path(self.ctx.root, state.name, number)
                digest = hnsw.save(index, path)
                snapshot = cur.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
                keep = self.ctx.settings.keep_generations
                stale = [g for g in gens if g["generation"] <= number - keep and not g["active"]]

                def activate(cur: duckdb.DuckDBPyConnection) -> None:
                    cur.execute("UPDATE lake.lh.index_generations SET active = false WHERE corpus = ? AND active",
                                [state.name])
                    cur.execute("INSERT INTO lake.lh.index_generations VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, "
                                "true, ?, ?)", [state.name, number, snapshot, str(path), json.dumps(params), digest,
                                                max_key, len(keys)])
                    trials.record(cur, state.name, number, "build", rows=len(keys), params=params,
                                  build_s=build_s, recall=recall, sample=sample)
                    journal.note(corpus=state.name, generation=number, event="build")
                    if stale:
                        cur.execute("DELETE FROM lake.lh.index_generations WHERE corpus = ? AND generation <= ? "
                                    "AND NOT active", [state.name, number - keep])

                try:
                    self.ctx.transaction(cur, activate)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            state.generation = Generation(number, index, max_key, str(path))
            state.built_at = time.monotonic()
            for g in stale:  # after the commit: a crash before it leaves the files the catalog still names
                hnsw.remove_local(store.sidecar_path(self.ctx.root, state.name, g["generation"]))
            log.info("corpus %s: built index generation %d (%d rows, %.1f s, recall@10 %s)", state.name, number,
                     len(keys), build_s, "n/a" if recall is None else f"{recall:.4f}")
            return {"corpus": state.name, "generation": number, "rows": len(keys), "snapshot_id": snapshot,
                    "build_s": round(build_s, 3), "recall_at_10": recall}

    def rebuild_index(self, name: str, *, min_interval_s: float = 0.0) -> dict[str, Any]:
        """A new index generation, swapped in. With `min_interval_s` (asked from outside: HTTP, MCP ...), a
        rebuild already running is a Conflict and one asked again too soon a TooManyRequests, rather than a
        queue of builds that would hold the cores."""
        state = self.state(name)
        if not min_interval_s:
            return self._build_generation(state)
        if not state.lock.acquire(blocking=False):
            raise Conflict(f"an index of corpus {name!r} is being built; ask again when it is done",
                           code="rebuild_in_progress")
        try:
            wait = state.built_at + min_interval_s - time.monotonic()
            if wait > 0:
                raise TooManyRequests(f"corpus {name!r} was indexed {min_interval_s - wait:.0f} s ago; rebuilds are "
                                      f"at most one every {min_interval_s:g} s (rebuild_interval_s)",
                                      code="rebuild_too_soon", retry_after_s=round(wait, 1))
            return self._build_generation(state)
        finally:
            state.lock.release()

    def rollback_index(self, name: str, generation: int | None = None) -> dict[str, Any]:
        """Re-activate `generation` (default: the one before the active one)."""
        state = self.state(name)
        with state.lock, self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            gens = store.generations(cur, name)
            active = store.active_of(gens)
            if generation is None:
                older = [g for g in gens if active is None or g["generation"] < active["generation"]]
                if not older:
                    raise Conflict(f"corpus {name!r} has no earlier index generation to roll back to",
                                   code="no_earlier_generation")
                target = older[-1]
            else:
                target = next((g for g in gens if g["generation"] == generation), None)
                if target is None:
                    raise NotFound(f"corpus {name!r} has no index generation {generation}", code="generation_not_found")
            index, problem = self._sidecar(state, target)
            if index is None:
                raise Conflict(f"index generation {target['generation']} of {name!r} is {problem} on disk",
                               code="generation_unusable")
            _catch_up(state, index, target["max_key"])

            def flip(cur: duckdb.DuckDBPyConnection) -> None:
                cur.execute("UPDATE lake.lh.index_generations SET active = (generation = ?) WHERE corpus = ?",
                            [target["generation"], name])
                trials.record(cur, name, target["generation"], "rollback", rows=state.size, params=target["params"])
                journal.note(corpus=name, generation=target["generation"], event="rollback")

            self.ctx.transaction(cur, flip)
            state.generation = Generation(target["generation"], index, target["max_key"], target["path"])
        return {"corpus": name, "generation": target["generation"], "rows": state.size}

    # -- search --------------------------------------------------------------------------
    def query_vector(self, name: str, query: str | Sequence[float] | np.ndarray) -> np.ndarray:
        return self._query_vector(self.state(name), query)

    def _query_vector(self, state: CorpusState, query: str | Sequence[float] | np.ndarray) -> np.ndarray:
        if isinstance(query, str):
            vec = self.embedder(state.meta["embedder"]).embed_one(query)
        else:
            vec = np.asarray(query, dtype=np.float32).reshape(-1)
            if vec.shape[0] != state.dim:
                raise InvalidInput(f"query vector has {vec.shape[0]} dimensions, corpus {state.name!r} has {state.dim}",
                                   code="dimension_mismatch")
            if not np.isfinite(vec).all():
                raise InvalidInput("query vector holds NaN or infinite values", code="invalid_vector")
            if state.metric == "cos":
                if not vec.any():
                    raise InvalidInput("query vector is all zeros: it has no direction to compare by cosine",
                                       code="invalid_vector")
                vec = l2_normalise(vec[None].copy())[0]  # a copy: never rescale the caller's array
        return vec.astype(np.float32, copy=False)

    def search(self, name: str, query: str | Sequence[float] | np.ndarray, k: int = 10,
               ids: Sequence[Any] | None = None) -> list[Hit]:
        """Top-k rows of a corpus; with `ids`, only among those ids (always min(k, allowed) rows)."""
        state = self.state(name)
        vec = self._query_vector(state, query)
        keys, scores = state.search(vec, k) if ids is None else state.search_ids(vec, k, ids)
        return to_hits(state, keys, scores)

    def text_search(self, name: str, query: str, k: int = 10, ids: Sequence[Any] | None = None) -> list[Hit]:
        """BM25 over the corpus text (a DuckDB fts index kept beside the HNSW sidecar)."""
        return text_index.text_search(self, name, query, k, ids)

    def hybrid_search(self, name: str, query: str, k: int = 10, ids: Sequence[Any] | None = None,
                      fusion: str = "rrf", depth: int | None = None, weight: float | None = None) -> list[Hit]:
        """Vector and BM25 ranks fused (`rrf` or `linear`)."""
        return fusion_mod.hybrid_search(self, name, query, k, ids, fusion=fusion, depth=depth, weight=weight)

    def close(self) -> None:
        text_index.close_all(self)

    def rows(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """id -> {text, metadata} for the given ids (from memory: the state mirrors the lake table)."""
        state = self.state(name)
        out = {}
        for key in state.keys_for_ids(ids):
            ident, text, meta = state.row(int(key))
            out[ident] = {"text": text, "metadata": meta}
        return out


class _Batch:
    """Rows ready to write: ids (text), texts, metadata JSON, vectors, and the keys they will get."""

    def __init__(self, ids: list[str], texts: list[str], metas: list[str], vectors: np.ndarray,
                 keys: np.ndarray) -> None:
        self.ids, self.texts, self.metas, self.vectors = ids, texts, metas, vectors
        self.set_keys(keys)

    def set_keys(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.table = pa.table({"key": keys, "id": self.ids, "text": self.texts, "metadata": self.metas,
                               "embedding": store.list_array(self.vectors)})


def _synced_after(latest: int, before: int | None) -> int | None:
    """The snapshot a state mirrors after its own commit: the new one if that commit was the only one since
    `before`; else `before`, so the next sync replays what others committed meanwhile (idempotently)."""
    return latest if before is not None and latest == before + 1 else before


def _apply(state: CorpusState, deleted: np.ndarray, keys: np.ndarray, vectors: np.ndarray, rows: pa.Table) -> None:
    """Rows another process added or removed (`store.changes`), applied to the state and its graph. Idempotent:
    a replay of changes the state already has (its own writes among them) changes nothing."""
    if len(deleted):
        state.kill(deleted)
    if not len(keys):
        return
    fresh = keys >= len(state.live)
    fresh[~fresh] = ~state.live[keys[~fresh]]
    keys, vectors, rows = keys[fresh], vectors[fresh], rows.filter(pa.array(fresh))
    if not len(keys):
        return
    state.put(keys, vectors, rows.column("id"), rows.column("text"), rows.column("metadata"))
    gen = state.generation
    if gen is not None:
        gen.index.add(keys, vectors, threads=1)


def _catch_up(state: CorpusState, index: Any, max_key: int) -> None:
    """Add to a generation's graph the live rows added since it was built (keys above its max_key)."""
    newer = state.live_after(max_key)
    if len(newer):
        index.add(newer, state.vectors[newer])


def _check_row(row: Any, i: int) -> dict[str, Any]:
    if not isinstance(row, dict) or row.get("id") is None or not isinstance(row.get("text"), str):
        raise InvalidInput(f"row {i} must be an object with 'id' and a string 'text'", code="invalid_row", index=i)
    ident = row["id"]
    if isinstance(ident, (bool, dict, list, tuple)) or (isinstance(ident, float) and not math.isfinite(ident)):
        raise InvalidInput(f"row {i}: 'id' must be a string or a number, got {ident!r}", code="invalid_row", index=i)
    if row.get("metadata") is not None and not isinstance(row["metadata"], dict):
        raise InvalidInput(f"row {i}: 'metadata' must be an object", code="invalid_row", index=i)
    return row


def _text_ids(values: list[Any]) -> list[str]:
    """Ids are stored as text: 7 and "7" are one id. Two *different* values of one batch that become the same
    text (7 and "7", 1 and 1.0) are refused rather than silently merged into one row."""
    texts = [v if isinstance(v, str) else str(v) for v in values]
    first: dict[str, Any] = {}
    for text, value in zip(texts, values):
        seen = first.setdefault(text, value)
        if seen is not value and (type(seen) is not type(value) or seen != value):
            raise InvalidInput(f"ids {seen!r} and {value!r} are the same id once stored as text ({text!r}); "
                               "give each row one id spelling", code="colliding_ids")
    return texts

"""`VectorEngine`: corpora, embeddings and search for one lake (`lake.vectors`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
from usearch.index import Index

from lakehouse.engine.embedders import get_embedder
from lakehouse.engine.embedders.base import Embedder, l2_normalise
from lakehouse.engine.names import check_name
from lakehouse.engine.vectors import hnsw, store
from lakehouse.engine.vectors.corpus import CorpusState, Generation
from lakehouse.errors import Conflict, InvalidInput, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake
    from lakehouse.engine.vectors.text_index import TextIndex

log = logging.getLogger(__name__)

BULK_ROWS = 10_000  # an add this large (and larger than the index) builds a new generation in parallel


@dataclasses.dataclass
class Hit:
    id: str
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class VectorEngine:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._states: dict[str, CorpusState] = {}
        self._states_lock = threading.Lock()
        self.text_indexes: dict[str, TextIndex] = {}  # corpus -> BM25 index (text_index.index_for)

    # -- embeddings ----------------------------------------------------------------------
    def embedder(self, spec: str | None = None) -> Embedder:
        return get_embedder(spec or self.lake.settings.embedder, self.lake.settings)

    def embed(self, texts: Sequence[str], spec: str | None = None, *, cache: bool = True,
              progress: bool | None = None) -> np.ndarray:
        """Embed texts; with `cache`, texts embedded before by the same embedder cost a lookup."""
        emb = self.embedder(spec)
        if not cache or not texts:
            return emb.embed(list(texts), progress=progress)
        shas = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        unique = list(dict.fromkeys(shas))
        found: dict[str, np.ndarray] = {}
        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
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
                self.lake.transaction(cur, lambda c: c.execute(
                    "INSERT INTO lake.lh.embedding_cache SELECT ?, sha256, embedding FROM lh_new", [emb.id]))
                cur.unregister("lh_new")
        return np.stack([found[s] for s in shas]).astype(np.float32, copy=False)

    # -- corpora -------------------------------------------------------------------------
    def create_corpus(self, name: str, *, sql: str | None = None, dataset: str | None = None,
                      rows: Sequence[dict[str, Any]] | None = None, id: str = "id",
                      text: str | Sequence[str] = "text", metadata: Sequence[str] = (), embedder: str | None = None,
                      metric: str = "cos", dtype: str | None = None, params: dict[str, Any] | None = None,
                      kind: str = "table", builder: str | None = None, source: dict[str, Any] | None = None,
                      replace: bool = False, progress: bool | None = None) -> dict[str, Any]:
        """Build a corpus from a dataset, any SELECT, or ready rows `{id, text, metadata?}` (builders):
        embed the text, store rows in the lake, build the HNSW index (`dtype` default: i8 re-scored for
        cos corpora, f16 for the others; see `hnsw.QUANTIZED`)."""
        check_name(name, "corpus")
        if sum(x is not None for x in (sql, dataset, rows)) != 1:
            raise InvalidInput("give exactly one of sql=, dataset= or rows=", code="invalid_corpus_source")
        if metric not in hnsw.METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use one of {', '.join(hnsw.METRICS)}", code="invalid_metric")
        dtype = dtype or hnsw.default_dtype(metric)
        hnsw.check_dtype(metric, dtype)
        texts = [text] if isinstance(text, str) else list(text)
        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
            if store.corpus_row(cur, name) is not None:
                if not replace:
                    raise Conflict(f"corpus {name!r} exists; drop it or pass replace=True", code="corpus_exists")
                self.drop_corpus(name)
            if rows is None:
                source_sql = sql if sql is not None else f"SELECT * FROM lake.main.{check_name(dataset)}"
                tbl = store.fetch_table(cur, f"SELECT * FROM ({source_sql})")
                rows = _rows_from_table(tbl, id, texts, list(metadata))
        emb = self.embedder(embedder)
        described = {"dataset": dataset, "sql": sql, "id": id, "text": texts, "metadata": list(metadata)}
        meta = {
            "name": name, "embedder": embedder or self.lake.settings.embedder, "embedder_id": emb.id,
            "dim": emb.dim, "metric": metric, "dtype": dtype, "source": {**described, **(source or {})},
            "kind": kind, "builder": builder or ("dataset" if dataset else "sql" if sql else "rows"),
            "params": {**hnsw.DEFAULT_PARAMS, **(params or {})},
        }
        def register(cur: duckdb.DuckDBPyConnection) -> None:
            cur.execute(f"CREATE TABLE {store.table(name)} (key BIGINT, id VARCHAR, text VARCHAR, "
                        "metadata VARCHAR, embedding FLOAT[])")
            cur.execute("INSERT INTO lake.lh.corpora VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, "
                        "now()::TIMESTAMP)",
                        [name, meta["embedder"], emb.id, emb.dim, metric, dtype,
                         json.dumps(meta["source"], default=str), kind, meta["builder"], json.dumps(meta["params"])])

        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
            self.lake.transaction(cur, register)
        state = CorpusState(meta)
        state.loaded = True
        with self._states_lock:
            self._states[name] = state
        self.add_to_corpus(name, rows, progress=progress, _rebuild=True)
        return self.describe(name)

    def add_to_corpus(self, name: str, rows: Sequence[dict[str, Any]] | pa.Table,
                      embeddings: np.ndarray | None = None, *, progress: bool | None = None,
                      _rebuild: bool = False) -> dict[str, Any]:
        """Add or replace rows `{id, text, metadata?}` (same id: the new row wins)."""
        state = self.state(name)
        if isinstance(rows, pa.Table):
            rows = rows.to_pylist()
        rows = [_check_row(r, i) for i, r in enumerate(rows)]
        if embeddings is None:
            vectors = self.embed([r["text"] for r in rows], state.meta["embedder"], progress=progress)
        else:
            vectors = np.asarray(embeddings, dtype=np.float32)
            if vectors.shape != (len(rows), state.dim):
                raise InvalidInput(f"embeddings must have shape ({len(rows)}, {state.dim}), got {vectors.shape}",
                                   code="invalid_embeddings")
            if state.metric == "cos":
                vectors = l2_normalise(vectors.copy())  # a copy: never rescale the caller's array
        ids = [str(r["id"]) for r in rows]
        with state.lock:
            # the last row of a batch wins for a repeated id
            last = {ident: i for i, ident in enumerate(ids)}
            order = sorted(last.values())
            ids = [ids[i] for i in order]
            vectors = vectors[order]
            rows = [rows[i] for i in order]
            replaced = state.keys_of_texts(ids)
            keys = np.arange(state.next_key, state.next_key + len(ids), dtype=np.int64)
            texts = [r["text"] for r in rows]
            # orjson: ~5x faster than json.dumps, which held the GIL for ~10 % of an add (compact JSON text)
            metas = [orjson.dumps(r.get("metadata") or {}, default=str).decode() for r in rows]
            batch = pa.table({"key": keys, "id": ids, "text": texts, "metadata": metas,
                              "embedding": store.list_array(vectors)})
            with self.lake.fresh_cursor() as cur, map_duckdb_errors():
                def write(cur: duckdb.DuckDBPyConnection) -> None:
                    if len(replaced):
                        cur.execute(f"DELETE FROM {store.table(name)} WHERE key IN (SELECT unnest(?))",
                                    [replaced.tolist()])
                    cur.execute(f"INSERT INTO {store.table(name)} SELECT * FROM lh_batch")

                cur.register("lh_batch", batch)
                try:
                    self.lake.transaction(cur, write)
                finally:
                    cur.unregister("lh_batch")
            state.kill(replaced)
            state.put(keys, vectors, ids, texts, metas)
            gen = state.generation
            if _rebuild or (gen is not None and len(keys) > max(BULK_ROWS, len(gen.index))):
                self._build_generation(state)  # a bulk load: one parallel build beats incremental inserts
            elif gen is not None:
                # one thread for ordinary batches, so adds to several corpora use the cores in parallel
                threads = 1 if len(keys) < BULK_ROWS else (self.lake.settings.threads or 0)
                self._mutable(state).index.add(keys, vectors, threads=threads)
        return {"corpus": name, "added": len(ids), "replaced": int(len(replaced)), "rows": state.size}

    def remove_from_corpus(self, name: str, ids: Sequence[Any]) -> int:
        state = self.state(name)
        with state.lock:
            keys = state.keys_for_ids(list(ids))
            if len(keys):
                with self.lake.fresh_cursor() as cur, map_duckdb_errors():
                    self.lake.transaction(cur, lambda c: c.execute(
                        f"DELETE FROM {store.table(name)} WHERE key IN (SELECT unnest(?))", [keys.tolist()]))
                state.kill(keys)
        return int(len(keys))

    def drop_corpus(self, name: str) -> None:
        check_name(name, "corpus")
        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
            if store.corpus_row(cur, name) is None:
                raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
            def drop(cur: duckdb.DuckDBPyConnection) -> None:
                cur.execute(f"DROP TABLE IF EXISTS {store.table(name)}")
                cur.execute("DELETE FROM lake.lh.corpora WHERE name = ?", [name])
                cur.execute("DELETE FROM lake.lh.index_generations WHERE corpus = ?", [name])

            self.lake.transaction(cur, drop)
        with self._states_lock:
            self._states.pop(name, None)
        from lakehouse.engine.vectors import text_index

        text_index.forget(self, name)
        folder = self._folder(name)
        for f in folder.glob("*.usearch"):
            f.unlink(missing_ok=True)

    def corpora(self) -> list[dict[str, Any]]:
        """Every corpus as `describe` gives it, read in three queries (not three per corpus)."""
        return self._describe(None)

    def describe(self, name: str) -> dict[str, Any]:
        check_name(name, "corpus")
        found = self._describe(name)
        if not found:
            raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
        return found[0]

    def _describe(self, name: str | None) -> list[dict[str, Any]]:
        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
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
        check_name(name, "corpus")
        with self._states_lock:
            state = self._states.get(name)
            if state is None:
                with self.lake.fresh_cursor() as cur, map_duckdb_errors():
                    meta = store.corpus_row(cur, name)
                if meta is None:
                    raise NotFound(f"no corpus named {name!r}", code="corpus_not_found")
                state = self._states[name] = CorpusState(meta)
        if not state.loaded:
            with state.lock:
                if not state.loaded:
                    self._load(state)
        return state

    def _load(self, state: CorpusState) -> None:
        with self.lake.fresh_cursor() as cur, map_duckdb_errors():
            keys, vectors, rows = store.load_rows(cur, state.name, state.dim)
            active = store.active_generation(cur, state.name)
        state.put(keys, vectors, rows.column("id"), rows.column("text"), rows.column("metadata"))
        state.loaded = True
        if active is None:
            self._build_generation(state)
            return
        index = hnsw.load(Path(active["path"]), active["sha256"],
                          expansion_search=active["params"]["expansion_search"], view=True)
        if index is None:
            self._build_generation(state)  # missing or corrupt sidecar: rebuilt from the lake table
            return
        state.generation = Generation(active["generation"], index, active["max_key"], active["path"], view=True)
        if len(state.live_after(active["max_key"])):  # rows added since it was built: the view must become a copy
            _catch_up(state, self._mutable(state).index, active["max_key"])

    def _mutable(self, state: CorpusState) -> Generation:
        """Memory-mapped views are read-only: swap in a loaded copy before the first add."""
        gen = state.generation
        assert gen is not None
        if gen.view:
            loaded = Index.restore(gen.path, view=False)
            loaded.expansion_search = gen.index.expansion_search
            gen = state.generation = Generation(gen.number, loaded, gen.max_key, gen.path)
        return gen

    def _folder(self, name: str) -> Path:
        return self.lake.root / "indexes" / name

    def _build_generation(self, state: CorpusState) -> dict[str, Any]:
        with state.lock:
            params = state.meta["params"]
            keys = np.flatnonzero(state.live).astype(np.int64)
            index = hnsw.build(state.vectors[keys], keys, metric=state.metric, dtype=state.meta["dtype"],
                               params=params, threads=self.lake.settings.threads)
            with self.lake.fresh_cursor() as cur, map_duckdb_errors():
                number = 1 + max((g["generation"] for g in store.generations(cur, state.name)), default=0)
                path = self._folder(state.name) / f"{number}.usearch"
                digest = hnsw.save(index, path)
                snapshot = cur.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]
                max_key = int(keys.max()) if len(keys) else -1
                def activate(cur: duckdb.DuckDBPyConnection) -> None:
                    cur.execute("UPDATE lake.lh.index_generations SET active = false WHERE corpus = ? AND active",
                                [state.name])
                    cur.execute("INSERT INTO lake.lh.index_generations VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, "
                                "true, ?, ?)", [state.name, number, snapshot, str(path), json.dumps(params), digest,
                                                max_key, len(keys)])

                try:
                    self.lake.transaction(cur, activate)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            state.generation = Generation(number, index, max_key, str(path))
            log.info("corpus %s: built index generation %d (%d rows)", state.name, number, len(keys))
            return {"corpus": state.name, "generation": number, "rows": len(keys), "snapshot_id": snapshot}

    def rebuild_index(self, name: str) -> dict[str, Any]:
        return self._build_generation(self.state(name))

    def rollback_index(self, name: str, generation: int | None = None) -> dict[str, Any]:
        """Re-activate `generation` (default: the one before the active one)."""
        state = self.state(name)
        with state.lock, self.lake.fresh_cursor() as cur, map_duckdb_errors():
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
            index = hnsw.load(Path(target["path"]), target["sha256"],
                              expansion_search=target["params"]["expansion_search"], view=False)
            if index is None:
                raise Conflict(f"index generation {target['generation']} of {name!r} is missing or corrupt on disk",
                               code="generation_unusable")
            _catch_up(state, index, target["max_key"])
            self.lake.transaction(cur, lambda c: c.execute(
                "UPDATE lake.lh.index_generations SET active = (generation = ?) WHERE corpus = ?",
                [target["generation"], name]))
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
            if state.metric == "cos":
                vec = l2_normalise(vec[None].copy())[0]  # a copy: never rescale the caller's array
        return vec.astype(np.float32, copy=False)

    def search(self, name: str, query: str | Sequence[float] | np.ndarray, k: int = 10,
               ids: Sequence[Any] | None = None) -> list[Hit]:
        """Top-k rows of a corpus; with `ids`, only among those ids (always min(k, allowed) rows)."""
        check_k(k)
        state = self.state(name)
        vec = self._query_vector(state, query)
        keys, scores = state.search(vec, k) if ids is None else state.search_ids(vec, k, ids)
        return to_hits(state, keys, scores)

    def text_search(self, name: str, query: str, k: int = 10, ids: Sequence[Any] | None = None) -> list[Hit]:
        """BM25 over the corpus text (a DuckDB fts index kept beside the HNSW sidecar)."""
        from lakehouse.engine.vectors import text_index

        return text_index.text_search(self, name, query, k, ids)

    def hybrid_search(self, name: str, query: str, k: int = 10, ids: Sequence[Any] | None = None,
                      fusion: str = "rrf", depth: int | None = None, weight: float | None = None) -> list[Hit]:
        """Vector and BM25 ranks fused (`rrf` or `linear`)."""
        from lakehouse.engine.vectors import fusion as fusion_mod

        return fusion_mod.hybrid_search(self, name, query, k, ids, fusion=fusion, depth=depth, weight=weight)

    def close(self) -> None:
        from lakehouse.engine.vectors import text_index

        text_index.close_all(self)

    def rows(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """id -> {text, metadata} for the given ids (from memory: the state mirrors the lake table)."""
        state = self.state(name)
        out = {}
        for key in state.keys_for_ids(ids):
            ident, text, meta = state.row(int(key))
            out[ident] = {"text": text, "metadata": meta}
        return out


def _catch_up(state: CorpusState, index: Index, max_key: int) -> None:
    """Add to a generation's graph the live rows added since it was built (keys above its max_key)."""
    newer = state.live_after(max_key)
    if len(newer):
        index.add(newer, state.vectors[newer])


def check_k(k: Any) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k > 10_000:
        raise InvalidInput(f"k must be an integer from 0 to 10000, got {k!r}", code="invalid_k")
    return k


def to_hits(state: CorpusState, keys: np.ndarray, scores: np.ndarray) -> list[Hit]:
    """(keys, scores) best first as ranked hits with the corpus's ids."""
    return [Hit(i, s, r) for r, (i, s) in enumerate(zip(state.ids[keys].tolist(), scores.tolist(), strict=True), 1)]


def _rows_from_table(tbl: pa.Table, id_col: str, text_cols: list[str], meta_cols: list[str]) -> list[dict[str, Any]]:
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


def _check_row(row: Any, i: int) -> dict[str, Any]:
    if not isinstance(row, dict) or row.get("id") is None or not isinstance(row.get("text"), str):
        raise InvalidInput(f"row {i} must be an object with 'id' and a string 'text'", code="invalid_row", index=i)
    if row.get("metadata") is not None and not isinstance(row["metadata"], dict):
        raise InvalidInput(f"row {i}: 'metadata' must be an object", code="invalid_row", index=i)
    return row


"""HNSW trials: one row per index build, swap or rollback in `lh.hnsw_trials` (GET /hnsw/trials, SQL
`hnsw_trials()`), with the build's seconds and its recall@10 measured at build time: a sample of the
corpus's own vectors searched through the new graph exactly as queries are, against exact search."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from lakehouse.engine.vectors.corpus import Generation

if TYPE_CHECKING:
    from usearch.index import Index

    from lakehouse.engine.vectors.corpus import CorpusState

K = 10
_BLOCK = 65_536  # corpus rows per matrix product: bounds the score matrix at sample x 64K floats


def measure_recall(state: CorpusState, index: Index, max_key: int, sample: int) -> tuple[float | None, int]:
    """(recall@10 of `index` over `sample` of the corpus's live vectors, queries used); (None, 0) when off
    or when the corpus has no more rows than k (every search is then exact)."""
    live = np.flatnonzero(state.live)
    if sample <= 0 or len(live) <= K:
        return None, 0
    rng = np.random.default_rng(0)  # the same queries for every generation of a corpus of this size
    queries = state.vectors[np.sort(rng.choice(live, size=min(sample, len(live)), replace=False))]
    exact = _exact_top(state, live, queries)
    gen = Generation(-1, index, max_key, "")
    found = 0
    for q, truth in zip(queries, exact):
        keys, _ = state.search_generation(gen, q, K)
        found += len(np.intersect1d(keys, truth))
    return round(found / (K * len(queries)), 4), len(queries)


def _exact_top(state: CorpusState, live: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The true top-k keys per query (blocks of the corpus times all queries: BLAS, not a loop)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_keys = np.zeros((len(queries), 0), dtype=np.int64)
    q_sq = (queries * queries).sum(axis=1)
    for start in range(0, len(live), _BLOCK):
        keys = live[start:start + _BLOCK]
        block = state.vectors[keys]
        scores = queries @ block.T
        if state.metric == "l2sq":
            scores = -(q_sq[:, None] - 2 * scores + (block * block).sum(axis=1)[None, :])
        scores = np.concatenate([best_scores, scores], axis=1)
        cand = np.concatenate([best_keys, np.broadcast_to(keys, (len(queries), len(keys)))], axis=1)
        top = np.argpartition(-scores, min(K, scores.shape[1] - 1), axis=1)[:, :K]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_keys = np.take_along_axis(cand, top, axis=1)
    return best_keys


def record(cur: duckdb.DuckDBPyConnection, corpus: str, generation: int, event: str, *, rows: int,
           params: dict[str, Any], build_s: float | None = None, recall: float | None = None,
           sample: int | None = None) -> None:
    """One trial row, inside the caller's transaction (it commits with the flip it describes)."""
    cur.execute("INSERT INTO lake.lh.hnsw_trials VALUES (now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?)",
                [corpus, generation, event, rows, json.dumps(params), None if build_s is None else round(build_s, 3),
                 recall, sample])

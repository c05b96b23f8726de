"""Hybrid search: vector and BM25 hits of a corpus fused into one ranking.

    rrf     reciprocal rank fusion: score = sum over both lists of 1 / (hits.RRF_K + rank)
    linear  min-max normalised scores: weight * vector + (1 - weight) * bm25 (absent from a list: 0)

Each list is fetched `depth` deep (default max(50, 5k)). `LINEAR_WEIGHT` was tuned on the SciFact
train split with the minilm embedder (`python -m benchmarks.scifact --tune`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lakehouse.engine.vectors.hits import Hit, rrf_score, to_hits
from lakehouse.engine.vectors.text_index import index_for

if TYPE_CHECKING:
    from lakehouse.engine.vectors.engine import VectorEngine

LINEAR_WEIGHT = 0.4  # vector share in `linear` fusion: SciFact train + minilm sweep, flat optimum 0.35-0.55
FUSIONS = ("rrf", "linear")


def default_depth(k: int) -> int:
    return max(50, 5 * k)


def hybrid_search(engine: VectorEngine, corpus: str, query: str, k: int = 10, ids: Sequence[Any] | None = None,
                  fusion: str = "rrf", depth: int | None = None, weight: float | None = None,
                  vector: Sequence[float] | np.ndarray | None = None) -> list[Hit]:
    """Top-k rows by vector and BM25 search fused with `fusion` ("rrf" or "linear"); with `ids`, only
    among them. `weight` (0..1, linear only) is the share of the vector score; `vector`, the query's
    embedding if the caller has it already (else `query` is embedded). Hits carry the fused score and
    ranks 1..k."""
    if depth is None:
        depth = default_depth(k)
    if k == 0:
        return []
    depth = max(depth, k)
    state = engine.state(corpus)
    allowed = None if ids is None else state.keys_for_ids(ids)  # mapped once for both searches
    qvec = engine.query_vector(corpus, query if vector is None else vector)
    vec = to_hits(state, *state.search(qvec, depth, allowed))
    txt = to_hits(state, *index_for(engine, corpus).search(query, depth, allowed))
    if fusion == "rrf":
        return fuse_rrf(vec, txt, k)
    return fuse_linear(vec, txt, k, LINEAR_WEIGHT if weight is None else float(weight))


def fuse_rrf(vector: Sequence[Hit], text: Sequence[Hit], k: int) -> list[Hit]:
    """Reciprocal rank fusion of two ranked lists (ties: the better best rank, then id)."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for hits in (vector, text):
        for h in hits:
            scores[h.id] = scores.get(h.id, 0.0) + rrf_score(h.rank)
            best[h.id] = min(best.get(h.id, h.rank), h.rank)
    return _top(scores, best, k)


def fuse_linear(vector: Sequence[Hit], text: Sequence[Hit], k: int, weight: float = LINEAR_WEIGHT) -> list[Hit]:
    """weight * minmax(vector score) + (1 - weight) * minmax(bm25 score); a row absent from a list gets 0."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for hits, w in ((vector, weight), (text, 1.0 - weight)):
        if not hits:
            continue
        lo = min(h.score for h in hits)
        hi = max(h.score for h in hits)
        span = hi - lo
        for h in hits:
            norm = (h.score - lo) / span if span > 0 else 1.0
            scores[h.id] = scores.get(h.id, 0.0) + w * norm
            best[h.id] = min(best.get(h.id, h.rank), h.rank)
    return _top(scores, best, k)


def _top(scores: dict[str, float], best: dict[str, int], k: int) -> list[Hit]:
    order = sorted(scores, key=lambda i: (-scores[i], best[i], i))[:k]
    return [Hit(i, scores[i], r + 1) for r, i in enumerate(order)]

"""`matrix_search`: several corpora searched in parallel, merged by score, each hit attributed.

Scores: when every searched corpus uses the same embedder the merged score is the raw cosine
(comparable across corpora). When embedders differ, cosines from different models are not
comparable, so each corpus's hits are scored by reciprocal rank, 1 / (60 + rank), and merged
on that; `relevance` still reports each hit's cosine under its own corpus's embedder.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from lakehouse.engine.matrix import relevance as relevance_mod
from lakehouse.engine.matrix.gate import choose_mode
from lakehouse.engine.matrix.metadata import allowed_keys, matches, parse_filter
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake
    from lakehouse.engine.vectors.corpus import CorpusState

RRF_K = 60
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="lakehouse-matrix")


@dataclasses.dataclass
class MatrixHit:
    corpus: str
    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    source: str = "index"  # or "playbook"
    relevance: float = 0.0
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "corpus": self.corpus, "id": self.id, "score": self.score, "text": self.text,
                "metadata": self.metadata, "source": self.source, "relevance": self.relevance}


@dataclasses.dataclass
class MatrixResult:
    mode: str | None
    mode_reason: str
    corpora: list[str]
    results: list[MatrixHit]
    dropped: dict[str, Any]
    elapsed_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "mode_reason": self.mode_reason, "corpora": self.corpora,
                "results": [h.to_dict() for h in self.results], "dropped": self.dropped,
                "elapsed_ms": self.elapsed_ms}


def matrix_search(lake: Lake, query: str, corpora: list[str] | None = None, *, k_per_corpus: int = 6,
                  top: int = 8, relevance: bool | None = None, threshold: float | None = None,
                  model: str | None = None, mode: str | None = None, force_mode: str | None = None,
                  metadata_filter: Any = None, use_playbook: bool = False, origin: str = "python") -> MatrixResult:
    """Search `corpora` (or a configured mode's corpora) for `query`; see the module docstring."""
    t0 = time.perf_counter()
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string", code="invalid_query")
    for name, value in (("k_per_corpus", k_per_corpus), ("top", top)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise InvalidInput(f"{name} must be an integer from 1 to 1000, got {value!r}", code=f"invalid_{name}")
    if corpora is not None and (not isinstance(corpora, list) or not all(isinstance(c, str) for c in corpora)):
        raise InvalidInput("corpora must be a list of corpus names", code="invalid_corpora")
    s = lake.settings
    choice = choose_mode(s.modes, mode=mode, force_mode=force_mode, model=model, models=lake.models,
                         corpora=list(dict.fromkeys(corpora or [])))
    flt = parse_filter(metadata_filter)
    with lake.observer.observe("matrix_search", source=origin, target=",".join(choice.corpora)) as rec:
        states = [lake.vectors.state(c) for c in choice.corpora]
        qvecs = {spec: lake.vectors.embedder(spec).embed_one(query)
                 for spec in dict.fromkeys(st.meta["embedder"] for st in states)}
        futures = [_POOL.submit(_search_one, st, qvecs[st.meta["embedder"]], k_per_corpus, flt) for st in states]
        per_corpus = [f.result() for f in futures]
        meta_dropped = sum(d for _, d in per_corpus)
        same_embedder = len(qvecs) == 1
        hits: list[MatrixHit] = []
        for found, _ in per_corpus:
            for rank, hit in enumerate(found, 1):
                if not same_embedder:
                    hit.score = 1.0 / (RRF_K + rank)
                hits.append(hit)
        if use_playbook:
            _apply_playbooks(lake, query, hits, qvecs, {st.name: st for st in states}, flt)
        hits.sort(key=lambda h: -h.score)
        hits = hits[:top]
        dropped_rel: list[dict[str, Any]] = []
        if s.relevance_filter if relevance is None else relevance:
            kept, dropped = relevance_mod.judge(s, query, [relevance_mod.Candidate(h, h.relevance, h.text) for h in hits],
                                                threshold)
            hits = [v.item for v in kept]
            dropped_rel = [{"corpus": v.item.corpus, "id": v.item.id, "relevance": round(v.relevance, 4),
                            "reason": v.reason} for v in dropped]
        for i, h in enumerate(hits, 1):
            h.rank = i
        rec.rows = len(hits)
        rec.extra.update(mode=choice.mode, dropped_relevance=len(dropped_rel), dropped_metadata=meta_dropped)
    return MatrixResult(choice.mode, choice.reason, choice.corpora, hits,
                        {"relevance": dropped_rel, "metadata_filter": meta_dropped},
                        round((time.perf_counter() - t0) * 1000, 3))


def _search_one(state: CorpusState, qvec: np.ndarray, k: int,
                flt: dict[str, list[str]] | None) -> tuple[list[MatrixHit], int]:
    if not flt:
        return search_corpus(state, qvec, k), 0
    allowed = allowed_keys(state, flt)
    return search_corpus(state, qvec, k, allowed), state.size - len(allowed)


def search_corpus(state: CorpusState, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[MatrixHit]:
    """The k best rows of one corpus (among the `allowed` keys) with their text and metadata; `relevance` is
    the true cosine, whatever the corpus metric: what the relevance filter judges."""
    keys, scores = state.search(qvec, k, allowed)
    out = []
    for key, score, cosine in zip(keys.tolist(), scores.tolist(), state.cosines(keys, qvec).tolist()):
        ident, text, meta = state.row(key)
        out.append(MatrixHit(state.name, ident, score, text, meta, "index", cosine))
    return out


def _apply_playbooks(lake: Lake, query: str, hits: list[MatrixHit], qvecs: dict[str, np.ndarray],
                     states: dict[str, CorpusState], flt: dict[str, list[str]] | None) -> None:
    """Boost, demote or inject recorded answers (in place); an injected answer must pass the metadata filter."""
    s = lake.settings
    qvec = qvecs.get(s.embedder)
    if qvec is None:  # playbooks are embedded with the lake's default embedder
        qvec = lake.playbooks.embed_query(query)
    weights = lake.playbooks.weights(qvec)
    if not weights:
        return
    by_key = {(h.corpus, h.id): h for h in hits}
    for (corpus, answer_id), (weight, entry, sim) in weights.items():
        delta = s.playbook_boost * weight
        hit = by_key.get((corpus, answer_id))
        if hit is not None:
            hit.score += delta
            continue
        if weight <= 0:
            continue  # nothing to demote that was not retrieved
        state = states.get(corpus)
        key = state.key_of(answer_id) if state is not None else None
        if key is not None:  # the answer is in a searched corpus: start from its own similarity
            ident, text, meta = state.row(key)
            if not matches(meta, flt):
                continue
            base = float(state.vectors[key] @ qvecs[state.meta["embedder"]])
            hit = MatrixHit(corpus, ident, base + delta, text, meta, "playbook", base)
        elif flt:  # an answer outside the searched corpora has no metadata to pass the filter with
            continue
        else:  # an answer outside the searched corpora: what was recorded is all we have
            # its relevance is how close this query is to the one the outcome was recorded for
            hit = MatrixHit(corpus, answer_id, delta, entry.answer_text or "", {}, "playbook", sim)
        hits.append(hit)
        by_key[(corpus, answer_id)] = hit

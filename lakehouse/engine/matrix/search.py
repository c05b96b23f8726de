"""`Retrieval`: the one retrieval pipeline, behind `matrix_search` and `ask`.

Several corpora are searched in parallel, merged by score, each hit attributed. Scores: when every
searched corpus uses the same embedder the merged score is the raw cosine (comparable across
corpora); when embedders differ, cosines from different models are not comparable, so each corpus's
hits are scored by reciprocal rank and merged on that; `relevance` still reports each hit's cosine
under its own corpus's embedder. Steps: the downgrade gate picks the corpora, a metadata filter (and,
over one dataset corpus, a SQL `where`) pre-filters the rows, playbooks boost, demote or inject
recorded answers, and the relevance filter drops chunks that are not about the query. A recorded
success carries its own evidence: a boosted or injected playbook answer is exempt from the relevance
filter, and a success recorded for this very query ranks first unless a later failure negates it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from lakehouse.engine.matrix import relevance as relevance_mod
from lakehouse.engine.matrix.gate import choose_mode
from lakehouse.engine.vectors.filters import ids_where
from lakehouse.engine.vectors.hits import rrf_score
from lakehouse.engine.vectors.metadata import allowed_keys, matches, parse_filter
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext
    from lakehouse.engine.matrix.playbooks import Playbooks, Weight
    from lakehouse.engine.vectors.corpus import CorpusState
    from lakehouse.engine.vectors.engine import VectorEngine

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="lakehouse-matrix")


@dataclasses.dataclass
class MatrixHit:
    corpus: str
    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    source: str = "index"  # or "playbook" (boosted or injected by a recorded outcome)
    relevance: float = 0.0
    rank: int = 0
    evidence: dict[str, Any] | None = None  # for playbook hits: the recorded outcome behind them

    def to_dict(self) -> dict[str, Any]:
        out = {"rank": self.rank, "corpus": self.corpus, "id": self.id, "score": self.score, "text": self.text,
               "metadata": self.metadata, "source": self.source, "relevance": self.relevance}
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out


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


class Retrieval:
    def __init__(self, ctx: EngineContext, vectors: VectorEngine, playbooks: Playbooks) -> None:
        self.ctx = ctx
        self.vectors = vectors
        self.playbooks = playbooks

    def matrix_search(self, query: str, corpora: list[str] | None = None, *, k_per_corpus: int = 6, top: int = 8,
                      relevance: bool | None = None, threshold: float | None = None, model: str | None = None,
                      mode: str | None = None, force_mode: str | None = None, metadata_filter: Any = None,
                      where: str | None = None, use_playbook: bool = False) -> MatrixResult:
        """Search `corpora` (or a configured mode's corpora) for `query`; see the module docstring.

        `dropped` reports `relevance` (each dropped hit and why), `metadata_filter_rows` (corpus rows the
        pre-filter excluded) and `metadata_filter_results` (hits the unfiltered search would have returned
        that the filter excluded)."""
        t0 = time.perf_counter()
        s = self.ctx.settings
        choice = choose_mode(s.modes, mode=mode, force_mode=force_mode, model=model, models=self.ctx.models,
                             corpora=list(dict.fromkeys(corpora or [])))
        if where is not None and len(choice.corpora) != 1:
            raise InvalidInput("where filters one corpus's source rows; with several corpora use metadata_filter",
                               code="where_needs_one_corpus")
        flt = parse_filter(metadata_filter)
        states = [self.vectors.state(c) for c in choice.corpora]
        allowed = {st.name: self._allowed(st, flt, where) for st in states}
        qvecs = {spec: self.vectors.embedder(spec).embed_one(query)
                 for spec in dict.fromkeys(st.meta["embedder"] for st in states)}
        futures = [_POOL.submit(_search_one, st, qvecs[st.meta["embedder"]], k_per_corpus, allowed[st.name], flt)
                   for st in states]
        per_corpus = [f.result() for f in futures]
        same_embedder = len(qvecs) == 1
        hits: list[MatrixHit] = []
        for found, _ in per_corpus:
            for rank, hit in enumerate(found, 1):
                if not same_embedder:
                    hit.score = rrf_score(rank)
                hits.append(hit)
        first: set[tuple[str, str]] = set()
        if use_playbook:
            first = self._apply_playbooks(query, hits, qvecs, {st.name: st for st in states}, flt)
        hits.sort(key=lambda h: ((h.corpus, h.id) not in first, -h.score))
        hits = hits[:top]
        dropped_rel: list[dict[str, Any]] = []
        if s.relevance_filter if relevance is None else relevance:
            judged = [h for h in hits if h.source != "playbook"]
            _, dropped = relevance_mod.judge(s, query, [relevance_mod.Candidate(h, h.relevance, h.text) for h in judged],
                                             threshold)
            gone = {id(v.item) for v in dropped}
            hits = [h for h in hits if id(h) not in gone]
            dropped_rel = [{"corpus": v.item.corpus, "id": v.item.id, "relevance": round(v.relevance, 4),
                            "reason": v.reason} for v in dropped]
        for i, h in enumerate(hits, 1):
            h.rank = i
        rows_out = sum(st.size - len(allowed[st.name]) for st in states if allowed[st.name] is not None)
        return MatrixResult(choice.mode, choice.reason, choice.corpora, hits,
                            {"relevance": dropped_rel, "metadata_filter_rows": rows_out,
                             "metadata_filter_results": sum(n for _, n in per_corpus)},
                            round((time.perf_counter() - t0) * 1000, 3))

    def _allowed(self, state: CorpusState, flt: dict[str, list[str]] | None, where: str | None) -> np.ndarray | None:
        """Keys the filters leave (None: no filter)."""
        allowed: np.ndarray | None = None
        if where is not None:
            allowed = state.keys_for_ids(ids_where(self.vectors, state.name, where))
        if flt:
            matching = allowed_keys(state, flt)
            allowed = matching if allowed is None else np.intersect1d(allowed, matching, assume_unique=True)
        return allowed

    def _apply_playbooks(self, query: str, hits: list[MatrixHit], qvecs: dict[str, np.ndarray],
                         states: dict[str, CorpusState], flt: dict[str, list[str]] | None) -> set[tuple[str, str]]:
        """Boost, demote or inject recorded answers (in place); returns the answers recorded as successes for
        this very query (and not negated by a later failure), which rank first. An injected answer must pass
        the metadata filter."""
        qvec = qvecs.get(self.ctx.settings.embedder)
        if qvec is None:  # playbooks are embedded with the lake's default embedder
            qvec = self.playbooks.embed_query(query)
        weights = self.playbooks.weights(qvec, query)
        by_key = {(h.corpus, h.id): h for h in hits}
        first: set[tuple[str, str]] = set()
        for key, w in weights.items():
            corpus, answer_id = key
            delta = self.ctx.settings.playbook_boost * w.weight
            hit = by_key.get(key)
            if hit is None:
                if w.weight <= 0:
                    continue  # nothing to demote that was not retrieved
                hit = self._inject(corpus, answer_id, w, delta, states, qvecs, flt)
                if hit is None:
                    continue
                hits.append(hit)
                by_key[key] = hit
            else:
                hit.score += delta
                if w.weight > 0:
                    hit.source = "playbook"
                    hit.evidence = _evidence(w)
            if w.exact_success:
                first.add(key)
        return first

    def _inject(self, corpus: str, answer_id: str, w: Weight, delta: float, states: dict[str, CorpusState],
                qvecs: dict[str, np.ndarray], flt: dict[str, list[str]] | None) -> MatrixHit | None:
        state = states.get(corpus)
        key = state.key_of(answer_id) if state is not None else None
        if key is not None:  # the answer is in a searched corpus: start from its own similarity
            ident, text, meta = state.row(key)
            if not matches(meta, flt):
                return None
            base = float(state.vectors[key] @ qvecs[state.meta["embedder"]])
            return MatrixHit(corpus, ident, base + delta, text, meta, "playbook", base, evidence=_evidence(w))
        if flt:  # an answer outside the searched corpora has no metadata to pass the filter with
            return None
        # outside the searched corpora: what was recorded is all we have; its relevance is how close this query
        # is to the one the outcome was recorded for
        return MatrixHit(corpus, answer_id, delta, w.entry.answer_text or "", {}, "playbook", w.similarity,
                         evidence=_evidence(w))

    def relevance(self, query: str, candidates: list[dict[str, Any]], threshold: float | None = None) -> dict[str, Any]:
        """The relevance filter over caller-supplied candidates `{id, text, ...}` (embedded with the default
        embedder): `{kept, dropped}`, each candidate with its relevance and, when dropped, why."""
        vectors = self.vectors.embed([query] + [c["text"] for c in candidates], cache=False)
        qvec, cvecs = vectors[0], vectors[1:]
        cands = [relevance_mod.Candidate(c, float(v @ qvec), c["text"]) for c, v in zip(candidates, cvecs)]
        kept, dropped = relevance_mod.judge(self.ctx.settings, query, cands, threshold)
        return {"kept": [{**v.item, "relevance": round(v.relevance, 4)} for v in kept],
                "dropped": [{**v.item, "relevance": round(v.relevance, 4), "reason": v.reason} for v in dropped]}


def _evidence(w: Weight) -> dict[str, Any]:
    e = w.entry
    age = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - e.recorded_at).total_seconds() / 86400.0
    return {"query": e.query, "outcome": e.outcome, "recorded_at": e.recorded_at.isoformat(),
            "age_days": round(max(age, 0.0), 3), "similarity": round(w.similarity, 4), "weight": round(w.weight, 4),
            "exact_query": w.exact_success}


def _search_one(state: CorpusState, qvec: np.ndarray, k: int, allowed: np.ndarray | None,
                flt: dict[str, list[str]] | None) -> tuple[list[MatrixHit], int]:
    """(hits among the allowed keys, how many of the unfiltered top k a metadata filter excluded)."""
    if allowed is None:
        return search_corpus(state, qvec, k), 0
    excluded = 0
    if flt:
        keys, _ = state.search(qvec, k)
        excluded = sum(1 for key in keys.tolist() if not matches(state.row(key)[2], flt))
    return search_corpus(state, qvec, k, allowed), excluded


def search_corpus(state: CorpusState, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[MatrixHit]:
    """The k best rows of one corpus (among the `allowed` keys) with their text and metadata; `relevance` is
    the true cosine, whatever the corpus metric: what the relevance filter judges."""
    if allowed is not None and not len(allowed):
        return []
    keys, scores = state.search(qvec, k, allowed)
    out = []
    for key, score, cosine in zip(keys.tolist(), scores.tolist(), state.cosines(keys, qvec).tolist()):
        ident, text, meta = state.row(key)
        out.append(MatrixHit(state.name, ident, score, text, meta, "index", cosine))
    return out

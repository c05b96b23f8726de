"""Playbooks: recorded outcomes that teach retrieval which answers worked.

`lh.playbooks` holds (query, its embedding, corpus, answer, outcome +1/-1, when, source, tags).
For a new query close to recorded ones (cosine >= `playbook_threshold`), each recorded answer
gets weight = outcome x similarity x 0.5 ** (age / half-life): positive weight boosts it (or
injects it with source 'playbook' when retrieval missed it), negative weight demotes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakehouse.engine import journal
from lakehouse.engine.names import check_name
from lakehouse.engine.vectors import store
from lakehouse.errors import InvalidInput, LakehouseError, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext
    from lakehouse.engine.vectors.engine import VectorEngine

_OUTCOMES = {1: 1, -1: -1, "success": 1, "failure": -1, "+1": 1, "-1": -1}


@dataclasses.dataclass
class Entry:
    id: str
    query: str
    corpus: str
    answer_id: str
    answer_text: str | None
    score: float | None
    outcome: int
    recorded_at: dt.datetime
    source: str
    tags: list[str]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["recorded_at"] = self.recorded_at.isoformat()
        return d


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def validate(raw: Any) -> dict[str, Any]:
    """A recorded entry as stored, or InvalidInput naming the bad field."""
    if not isinstance(raw, dict):
        raise InvalidInput("a playbook entry must be an object", code="invalid_playbook")
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("'query' must be a non-empty string", code="invalid_playbook", field="query")
    corpus = check_name(raw.get("corpus"), "corpus")
    answer_id = raw.get("answer_id")
    if answer_id is None or isinstance(answer_id, (bool, dict, list)):
        raise InvalidInput("'answer_id' is required (a string or number)", code="invalid_playbook", field="answer_id")
    outcome = raw.get("outcome", 1)
    if isinstance(outcome, bool) or not isinstance(outcome, (int, str)) or outcome not in _OUTCOMES:
        raise InvalidInput("'outcome' must be 1 / -1 (or 'success' / 'failure')", code="invalid_playbook",
                           field="outcome")
    score = raw.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise InvalidInput("'score' must be a number", code="invalid_playbook", field="score")
    recorded = raw.get("recorded_at")
    if recorded is None:
        recorded_at = _utcnow()
    else:
        try:
            recorded_at = dt.datetime.fromisoformat(str(recorded))
        except ValueError as exc:
            raise InvalidInput("'recorded_at' must be an ISO-8601 timestamp", code="invalid_playbook",
                               field="recorded_at") from exc
        if recorded_at.tzinfo is not None:
            recorded_at = recorded_at.astimezone(dt.UTC).replace(tzinfo=None)
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("'tags' must be a list of strings", code="invalid_playbook", field="tags")
    text = raw.get("answer_text")
    if text is not None and not isinstance(text, str):
        raise InvalidInput("'answer_text' must be a string", code="invalid_playbook", field="answer_text")
    source = raw.get("source") or "api"
    if not isinstance(source, str):
        raise InvalidInput("'source' must be a string", code="invalid_playbook", field="source")
    return {"id": uuid.uuid4().hex, "query": query.strip(), "corpus": corpus, "answer_id": str(answer_id),
            "answer_text": text, "score": None if score is None else float(score), "outcome": _OUTCOMES[outcome],
            "recorded_at": recorded_at, "source": source, "tags": tags}


@dataclasses.dataclass
class Weight:
    """What the recorded outcomes say about one (corpus, answer) for a query."""

    weight: float  # sum of outcome x similarity x decay over similar recorded queries
    entry: Entry  # the newest of them
    similarity: float  # the best query similarity among them
    exact_success: bool  # recorded as a success for this very query, and no later failure for it


def normalise_query(query: str) -> str:
    return " ".join(re.findall(r"\w+", query.casefold()))


class Playbooks:
    """Recorded outcomes for one lake: the lake table, mirrored in memory for lookups."""

    def __init__(self, ctx: EngineContext, vectors: VectorEngine) -> None:
        self.ctx = ctx
        self.vectors = vectors
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._loaded = False

    @property
    def embedder(self) -> str:
        return self.ctx.settings.embedder

    def _load(self) -> None:
        with self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            emb_id = self.vectors.embedder(self.embedder).id
            tbl = store.fetch_table(
                cur, "SELECT id, query, corpus, answer_id, answer_text, score, outcome, recorded_at, source, tags, "
                "query_embedding FROM lake.lh.playbooks WHERE embedder_id = ? ORDER BY recorded_at, id", [emb_id])
        rows = tbl.drop_columns(["query_embedding"]).to_pylist()
        self._entries = [Entry(**{**r, "tags": r["tags"] or []}) for r in rows]
        self._matrix = store.matrix(tbl.column("query_embedding"))
        self._loaded = True

    def forget(self, source: str) -> int:
        """Delete the entries recorded with `source` (e.g. an import being redone); returns how many."""
        with self._lock, self.ctx.fresh_cursor() as cur, map_duckdb_errors():
            n = self.ctx.transaction(cur, lambda c: c.execute(
                "DELETE FROM lake.lh.playbooks WHERE source = ?", [source]).fetchone()[0])
            self._loaded = False  # the mirror reloads on the next lookup
        return int(n)

    def entries(self) -> tuple[list[Entry], np.ndarray]:
        with self._lock:
            if not self._loaded:
                self._load()
            return self._entries, self._matrix

    def record(self, raws: Sequence[Any]) -> dict[str, Any]:
        """Record entries; a bad one is reported in `results` and never aborts the batch."""
        results: list[dict[str, Any]] = []
        good: list[tuple[int, dict[str, Any]]] = []
        for i, raw in enumerate(raws):
            try:
                good.append((i, validate(raw)))
            except LakehouseError as exc:
                results.append({"index": i, "error": exc.to_dict()})
        if good:
            entries = [e for _, e in good]
            emb = self.vectors.embedder(self.embedder)
            vectors = self.vectors.embed([e["query"] for e in entries], self.embedder)
            batch = pa.table({
                "id": [e["id"] for e in entries], "query": [e["query"] for e in entries],
                "query_embedding": store.list_array(vectors), "embedder_id": [emb.id] * len(entries),
                "corpus": [e["corpus"] for e in entries], "answer_id": [e["answer_id"] for e in entries],
                "answer_text": [e["answer_text"] for e in entries],
                "score": pa.array([e["score"] for e in entries], type=pa.float64()),
                "outcome": pa.array([e["outcome"] for e in entries], type=pa.int32()),
                "recorded_at": pa.array([e["recorded_at"] for e in entries], type=pa.timestamp("us")),
                "source": [e["source"] for e in entries],
                "tags": pa.array([e["tags"] for e in entries], type=pa.list_(pa.string())),
            })
            with self._lock, self.ctx.fresh_cursor() as cur, map_duckdb_errors():
                cur.register("lh_playbook_batch", batch)
                try:
                    self.ctx.transaction(cur, lambda c: (journal.note(rows_added=len(entries)), c.execute(
                        "INSERT INTO lake.lh.playbooks BY NAME SELECT * FROM lh_playbook_batch")))
                finally:
                    cur.unregister("lh_playbook_batch")
                if self._loaded:
                    self._entries = self._entries + [Entry(**e) for e in entries]
                    self._matrix = vectors if not len(self._matrix) else np.vstack([self._matrix, vectors])
            results.extend({"index": i, "id": e["id"]} for i, e in good)
        results.sort(key=lambda r: r["index"])
        return {"recorded": len(good), "failed": len(raws) - len(good), "results": results}

    def embed_query(self, query: str) -> np.ndarray:
        """A query embedded as the recorded ones are (the lake's default embedder)."""
        return self.vectors.embedder(self.embedder).embed_one(query)

    def lookup(self, query: str, k: int = 10) -> list[tuple[Entry, float]]:
        """Recorded entries whose query is most similar to `query`, best first (SQL playbook_lookup, HTTP)."""
        return self.similar(self.embed_query(query), k)

    def similar(self, query_vec: np.ndarray, k: int = 10, threshold: float | None = None) -> list[tuple[Entry, float]]:
        """Recorded entries whose query is most similar to `query_vec` (cosine), best first; for a caller bound to a
        profile, only entries of the corpora it binds (lookups, boosts and injected answers alike)."""
        from lakehouse.engine.ops.scope import in_scope_corpus  # the ops package imports the engine: not at import

        entries, matrix = self.entries()
        if not entries or k <= 0:
            return []
        sims = matrix @ query_vec
        order = [i for i in np.argsort(-sims) if in_scope_corpus(entries[i].corpus)][:k]
        return [(entries[i], float(sims[i])) for i in order if threshold is None or sims[i] >= threshold]

    def weights(self, query_vec: np.ndarray, query: str | None = None) -> dict[tuple[str, str], Weight]:
        """(corpus, answer_id) -> Weight, over entries whose query is at least `playbook_threshold` similar.
        Entries recorded for `query` itself (normalised text) decide `exact_success`: the newest of them wins."""
        s = self.ctx.settings
        now = _utcnow()
        exact = normalise_query(query) if query is not None else None
        out: dict[tuple[str, str], Weight] = {}
        newest_exact: dict[tuple[str, str], Entry] = {}
        for entry, sim in self.similar(query_vec, k=200, threshold=s.playbook_threshold):
            age_days = max((now - entry.recorded_at).total_seconds() / 86400.0, 0.0)
            weight = entry.outcome * sim * 0.5 ** (age_days / s.playbook_half_life_days)
            key = (entry.corpus, entry.answer_id)
            w = out.get(key)
            if w is None:
                out[key] = Weight(weight, entry, sim, False)
            else:
                w.weight += weight
                w.similarity = max(w.similarity, sim)
                if entry.recorded_at >= w.entry.recorded_at:
                    w.entry = entry
            if exact is not None and normalise_query(entry.query) == exact:
                seen = newest_exact.get(key)
                if seen is None or entry.recorded_at >= seen.recorded_at:
                    newest_exact[key] = entry
        for key, entry in newest_exact.items():
            out[key].exact_success = entry.outcome > 0
        return out

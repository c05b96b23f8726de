"""Evidence records: one shape for "a question, what was retrieved, the answer, how it was judged",
whatever produced it, so one scorer and one exporter serve every producer.

Builders (each takes the producer's own plain dict, never the Lake):

    from_observed_op(op)             observer op {id, op, origin, ts, duration_ms, ok, error_code, input, output}
    from_playbook_entry(entry)       playbook entry {query, corpus, answer_id, answer_text, outcome, recorded_at}
    from_workflow_run(run, nodes)    a workflow run row and its node rows, in execution order
    from_rag_answer(result, ...)     the dict `lakehouse.engine.rag.ask` returns
    EvidenceRecord.from_dict(d)      the JSONL / to_dict() shape (fixtures, exports, HTTP)

Citations are `Citation(id, n, corpus)`: `n` is the source number an answer cites as `[n]`; a citation
given as a bare id gets its 1-based position as `n`. Records without an id get a content-derived one
(`ev_` + 16 hex of SHA-256), so rebuilding evidence from the same inputs gives the same ids.

Storage: table `lake.lh.evidence` , written by `store_records(cur, records, scores)` inside
the caller's `lake.transaction`, read by `load_records` / `load_scored`. Citations and timings are JSON
text (DuckLake's inlined data does not read back every nested type); re-storing an id replaces its row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from lakehouse.engine import catalog
from lakehouse.errors import InvalidInput

KINDS = ("op", "playbook", "workflow_run", "rag_answer")
_OUTCOMES: dict[Any, int] = {1: 1, -1: -1, "+1": 1, "1": 1, "-1": -1, "success": 1, "failure": -1}
_FAILED_STATUSES = frozenset({"failed", "error", "cancelled", "canceled", "timeout"})
_QUERY_KEYS = ("query", "question", "prompt", "text")
_ANSWER_KEYS = ("answer", "content", "text")
_HIT_KEYS = ("results", "hits", "retrieved", "chunks")

_COLUMNS = ("id", "kind", "query", "answer", "retrieved_ids", "citations", "model", "outcome", "rating", "timings",
            "created_at", "source", "category", "reason", "scorer_version")


class ScoreLike(Protocol):
    category: str
    reason: str
    scorer_version: str


@dataclasses.dataclass(frozen=True)
class Citation:
    """One cited source: its id, the number the answer cites it by (`[n]`), and its corpus if known."""

    id: str
    n: int | None = None
    corpus: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "corpus": self.corpus, "id": self.id}


@dataclasses.dataclass
class EvidenceRecord:
    """What happened once: the query, what was retrieved, the answer and its citations, how it was judged.

    outcome is +1 / -1 / None (worked, failed, unknown); rating a 1-5 human rating or None; timings are
    named durations in ms; created_at is naive UTC; source says where the record came from
    (`observer:<op>:<id>`, `playbook:<corpus>/<answer id>`, `workflow:<name>/<run id>`, `rag:<corpora>`).
    """

    id: str
    kind: str
    query: str | None
    answer: str | None
    retrieved_ids: list[str] = dataclasses.field(default_factory=list)
    citations: list[Citation] = dataclasses.field(default_factory=list)
    model: str | None = None
    outcome: int | None = None
    rating: int | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    created_at: dt.datetime | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise _invalid("id", "must be a non-empty string")
        if self.kind not in KINDS:
            raise _invalid("kind", f"must be one of {', '.join(KINDS)}, got {self.kind!r}")
        self.query = _text(self.query, "query")
        self.answer = _text(self.answer, "answer")
        self.retrieved_ids = _ids(self.retrieved_ids, "retrieved_ids")
        self.citations = _citations(self.citations)
        self.model = _text(self.model, "model")
        self.outcome = _outcome(self.outcome)
        self.rating = _rating(self.rating)
        self.timings = _timings(self.timings)
        self.created_at = _timestamp(self.created_at, "created_at")
        if not isinstance(self.source, str):
            raise _invalid("source", "must be a string")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "query": self.query, "answer": self.answer,
            "retrieved_ids": list(self.retrieved_ids), "citations": [c.to_dict() for c in self.citations],
            "model": self.model, "outcome": self.outcome, "rating": self.rating, "timings": dict(self.timings),
            "created_at": self.created_at.isoformat() if self.created_at else None, "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EvidenceRecord:
        """The inverse of `to_dict`; unknown keys are refused (a typo would otherwise vanish silently)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("an evidence record must be an object", code="invalid_evidence")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise _invalid(unknown[0], f"unknown field (known: {', '.join(sorted(names))})")
        if "kind" not in raw:
            raise _invalid("kind", "is required")
        values = dict(raw)
        values.setdefault("query", None)
        values.setdefault("answer", None)
        if not values.get("id"):
            values["id"] = derive_id(values["kind"], values.get("query"), values.get("answer"),
                                     values.get("source"), values.get("created_at"))
        return cls(**values)


def derive_id(*parts: Any) -> str:
    """A content-derived record id: `ev_` + the first 16 hex digits of SHA-256 over the parts as JSON."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return "ev_" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def load_jsonl(path: str | Path) -> list[EvidenceRecord]:
    """Records from a JSONL file of `to_dict()` objects; a bad line raises InvalidInput naming it."""
    out: list[EvidenceRecord] = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(EvidenceRecord.from_dict(json.loads(line)))
            except ValueError as exc:  # JSONDecodeError and InvalidInput both are
                raise InvalidInput(f"{path}, line {lineno}: {exc}", code="invalid_evidence", line=lineno) from exc
    return out


# -- builders --------------------------------------------------------------------------------------


def from_observed_op(op: Mapping[str, Any]) -> EvidenceRecord:
    """An observer op: the query from input query/question/prompt/text, the answer from output
    answer/content/text, retrieved ids from output results/hits/retrieved/chunks, else the citations' ids
    (an `ask` op's output is a RAG answer, whose citations are retrieved rows). A failed op (`ok` false)
    is outcome -1 unless the op carries its own `outcome`."""
    _need_mapping(op, "observed op")
    inp, out = _mapping(op.get("input"), "input"), _mapping(op.get("output"), "output")
    name = str(op.get("op") or "")
    citations = _citations(out.get("citations") or [])
    retrieved = _hit_ids(out) or [c.id for c in citations]
    outcome = op.get("outcome")
    if outcome is None and op.get("ok") is False:
        outcome = -1
    timings = {"duration_ms": op.get("duration_ms")} | _pick_timings(out)
    op_id = op.get("id")
    return EvidenceRecord(
        id=str(op_id) if op_id else derive_id("op", name, op.get("ts"), inp, out),
        kind="op", query=_first_text(inp, _QUERY_KEYS), answer=_first_text(out, _ANSWER_KEYS),
        retrieved_ids=retrieved, citations=citations, model=_first_text(out, ("model",)) or _first_text(inp, ("model",)),
        outcome=outcome, rating=op.get("rating"), timings=timings, created_at=op.get("ts"),
        source=f"observer:{name}:{op_id}" if op_id else f"observer:{name}",
    )


def from_playbook_entry(entry: Mapping[str, Any]) -> EvidenceRecord:
    """A playbook entry: the recorded answer row is both the one retrieved id and the one citation."""
    _need_mapping(entry, "playbook entry")
    answer_id = entry.get("answer_id")
    if answer_id is None or isinstance(answer_id, (bool, Mapping, list)):
        raise _invalid("answer_id", "is required (a string or number)")
    corpus = entry.get("corpus")
    return EvidenceRecord(
        id=str(entry.get("id") or derive_id("playbook", entry.get("query"), corpus, str(answer_id),
                                           entry.get("recorded_at"))),
        kind="playbook", query=entry.get("query"), answer=entry.get("answer_text"), retrieved_ids=[str(answer_id)],
        citations=[Citation(str(answer_id), 1, corpus)], outcome=entry.get("outcome"), rating=entry.get("rating"),
        created_at=entry.get("recorded_at"), source=f"playbook:{corpus}/{answer_id}",
    )


def from_workflow_run(run: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]) -> EvidenceRecord:
    """A workflow run and its node rows (execution order).

    run:   {id, workflow, status, input: {query|question}, output: {answer, citations, model}?, outcome?,
            rating?, started_at, duration_ms?}
    node:  {node, op, status | ok, input, output, duration_ms}
    The answer (and its citations and model) comes from the run's output, else from the last node whose
    output has one; retrieved ids are every node's hits and citations, first seen first; a failed run
    (status failed/error/cancelled/timeout) is outcome -1 unless it carries its own outcome.
    """
    _need_mapping(run, "workflow run")
    inp, out = _mapping(run.get("input"), "input"), _mapping(run.get("output"), "output")
    run_answered = _first_text(out, _ANSWER_KEYS) is not None
    answer_from: Mapping[str, Any] = out if run_answered else {}
    retrieved: list[str] = []
    timings: dict[str, Any] = {"duration_ms": run.get("duration_ms")}
    for i, node in enumerate(nodes):
        _need_mapping(node, f"workflow node #{i}")
        node_out = _mapping(node.get("output"), f"nodes[{i}].output")
        retrieved += _hit_ids(node_out) + [c.id for c in _citations(node_out.get("citations") or [])]
        timings[f"{node.get('node') or node.get('op') or i}_ms"] = node.get("duration_ms")
        if not run_answered and _first_text(node_out, _ANSWER_KEYS):
            node_model = node_out.get("model") or _mapping(node.get("input"), f"nodes[{i}].input").get("model")
            answer_from = {**node_out, "model": node_model}
    outcome = run.get("outcome")
    if outcome is None and str(run.get("status") or "").lower() in _FAILED_STATUSES:
        outcome = -1
    run_id, workflow = run.get("id"), run.get("workflow")
    return EvidenceRecord(
        id=str(run_id) if run_id else derive_id("workflow_run", workflow, run.get("started_at"), inp),
        kind="workflow_run", query=_first_text(inp, _QUERY_KEYS), answer=_first_text(answer_from, _ANSWER_KEYS),
        retrieved_ids=list(dict.fromkeys(retrieved)), citations=answer_from.get("citations") or [],
        model=_first_text(answer_from, ("model",)), outcome=outcome, rating=run.get("rating"), timings=timings,
        created_at=run.get("started_at"), source=f"workflow:{workflow}/{run_id}",
    )


def from_rag_answer(result: Mapping[str, Any], *, retrieved: Sequence[Any] | None = None, outcome: Any = None,
                    rating: Any = None, created_at: Any = None, record_id: str | None = None) -> EvidenceRecord:
    """A `rag.ask` result. ask returns only the cited chunks when a model answered, so without `retrieved`
    (chunk dicts or ids) the citations' ids stand for what was retrieved. An extractive answer has no model."""
    _need_mapping(result, "RAG answer")
    citations = _citations(result.get("citations") or [])
    retrieved_ids = _ids(retrieved, "retrieved") if retrieved is not None else [c.id for c in citations]
    corpora = result.get("corpora") or sorted({c.corpus for c in citations if c.corpus})
    return EvidenceRecord(
        id=record_id or derive_id("rag_answer", result.get("question"), result.get("answer"),
                                  [c.to_dict() for c in citations], created_at),
        kind="rag_answer", query=result.get("question"), answer=result.get("answer"), retrieved_ids=retrieved_ids,
        citations=citations, model=result.get("model"), outcome=outcome, rating=rating,
        timings=_pick_timings(result), created_at=created_at, source="rag:" + ",".join(map(str, corpora)),
    )


# -- storage ---------------------------------------------------------------------------------------


def store_records(cur: duckdb.DuckDBPyConnection, records: Sequence[EvidenceRecord],
                  scores: Sequence[ScoreLike | None] | None = None) -> int:
    """Write `records` (and their scores, parallel to them) replacing rows with the same ids; run it inside
    `lake.transaction(cur, lambda c: store_records(c, records, scores))`. Returns rows written."""
    if scores is not None and len(scores) != len(records):
        raise InvalidInput(f"scores has {len(scores)} items for {len(records)} records", code="invalid_evidence")
    if not records:
        return 0
    scores = scores if scores is not None else [None] * len(records)
    batch = pa.table({
        "id": [r.id for r in records], "kind": [r.kind for r in records],
        "query": pa.array([r.query for r in records], pa.string()),
        "answer": pa.array([r.answer for r in records], pa.string()),
        "retrieved_ids": pa.array([r.retrieved_ids for r in records], pa.list_(pa.string())),
        "citations": [json.dumps([c.to_dict() for c in r.citations], sort_keys=True) for r in records],
        "model": pa.array([r.model for r in records], pa.string()),
        "outcome": pa.array([r.outcome for r in records], pa.int32()),
        "rating": pa.array([r.rating for r in records], pa.int32()),
        "timings": [json.dumps(r.timings, sort_keys=True) for r in records],
        "created_at": pa.array([r.created_at for r in records], pa.timestamp("us")),
        "source": [r.source for r in records],
        "category": pa.array([s.category if s else None for s in scores], pa.string()),
        "reason": pa.array([s.reason if s else None for s in scores], pa.string()),
        "scorer_version": pa.array([s.scorer_version if s else None for s in scores], pa.string()),
    })
    cur.execute("DELETE FROM lake.lh.evidence WHERE list_contains(?, id)", [[r.id for r in records]])
    cur.register("lh_evidence_batch", batch)
    try:
        cur.execute("INSERT INTO lake.lh.evidence BY NAME SELECT *, now()::TIMESTAMP AS scored_at FROM lh_evidence_batch")
    finally:
        cur.unregister("lh_evidence_batch")
    return len(records)


def load_records(cur: duckdb.DuckDBPyConnection, *, kind: str | None = None,
                 ids: Iterable[str] | None = None) -> list[EvidenceRecord]:
    """Stored records ordered by id, optionally of one kind or among `ids`."""
    return [record for record, _ in _load(cur, kind, ids)]


def load_scored(cur: duckdb.DuckDBPyConnection, *, kind: str | None = None) -> list[tuple[EvidenceRecord, str]]:
    """(record, persisted category) for every stored record that has a score: the input of scorer_drift."""
    return [(record, row["category"]) for record, row in _load(cur, kind, None) if row["category"] is not None]


def _load(cur: duckdb.DuckDBPyConnection, kind: str | None,
          ids: Iterable[str] | None) -> list[tuple[EvidenceRecord, dict[str, Any]]]:
    if not catalog.table_exists(cur, "lh", "evidence"):
        return []
    where, params = ["TRUE"], []
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if ids is not None:
        where.append("list_contains(?, id)")
        params.append(list(ids))
    rows = cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM lake.lh.evidence WHERE {' AND '.join(where)} ORDER BY id",
                       params).fetchall()
    out = []
    for values in rows:
        row = dict(zip(_COLUMNS, values))
        record = EvidenceRecord(
            id=row["id"], kind=row["kind"], query=row["query"], answer=row["answer"],
            retrieved_ids=row["retrieved_ids"] or [], citations=json.loads(row["citations"] or "[]"),
            model=row["model"], outcome=row["outcome"], rating=row["rating"], timings=json.loads(row["timings"] or "{}"),
            created_at=row["created_at"], source=row["source"] or "")
        out.append((record, row))
    return out


# -- field checks ----------------------------------------------------------------------------------


def _invalid(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"evidence field {field!r} {problem}", code="invalid_evidence", field=field)


def _need_mapping(value: Any, what: str) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"a {what} must be an object, got {type(value).__name__}", code="invalid_evidence")


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(field, "must be an object")
    return value


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string, got {type(value).__name__}")
    return value


def _first_text(obj: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _id(value: Any, field: str) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or isinstance(value, (bool, float, Mapping, list)) or value == "":
        raise _invalid(field, f"holds {value!r}: ids are non-empty strings or integers")
    return str(value)


def _ids(values: Any, field: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise _invalid(field, "must be a list of ids")
    return [_id(v, field) for v in values]


def _hit_ids(out: Mapping[str, Any]) -> list[str]:
    """Ids of the retrieved rows an op's output lists (`results`, `hits`, `retrieved`, `chunks`)."""
    for key in _HIT_KEYS:
        value = out.get(key)
        if isinstance(value, list):
            return _ids(value, f"output.{key}")
    return []


def _citations(values: Any) -> list[Citation]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise _invalid("citations", "must be a list of ids or {n, corpus, id} objects")
    out = []
    for pos, value in enumerate(values, 1):
        if isinstance(value, Citation):
            out.append(value)
            continue
        cid = _id(value, "citations")
        n, corpus = pos, None
        if isinstance(value, Mapping):
            n = value.get("n", pos)
            corpus = value.get("corpus")
            if isinstance(n, bool) or not isinstance(n, int):
                raise _invalid("citations", f"n must be an integer, got {n!r}")
            if corpus is not None and not isinstance(corpus, str):
                raise _invalid("citations", f"corpus must be a string, got {corpus!r}")
        out.append(Citation(cid, n, corpus))
    return out


def _outcome(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value not in _OUTCOMES:
        raise _invalid("outcome", f"must be +1, -1 (or 'success' / 'failure') or null, got {value!r}")
    return _OUTCOMES[value]


def _rating(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise _invalid("rating", f"must be an integer from 1 to 5 or null, got {value!r}")
    return value


def _timings(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise _invalid("timings", "must be an object of name -> milliseconds")
    out: dict[str, float] = {}
    for name, ms in value.items():
        if ms is None:
            continue
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise _invalid("timings", f"{name!r} must be a non-negative number of ms, got {ms!r}")
        out[str(name)] = float(ms)
    return out


def _pick_timings(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: obj[k] for k in ("retrieval_ms", "generation_ms") if obj.get(k) is not None}


def _timestamp(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _invalid(field, f"must be an ISO-8601 timestamp, got {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise _invalid(field, f"must be an ISO-8601 timestamp, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value

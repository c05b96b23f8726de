"""Evidence records: the builders from each producer, field checks, and the lh.evidence table."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.engine.distill import evidence
from lakehouse.engine.distill.evidence import Citation, EvidenceRecord
from lakehouse.engine.distill.scorer import score_record
from lakehouse.errors import InvalidInput

RAG_RESULT = {
    "question": "Who can drive a forklift in Peoria?", "answer": "Ann Lee holds a licence [1]. She is in Peoria [3].",
    "citations": [{"n": 1, "corpus": "workers", "id": "w1", "text": "Ann", "score": 0.9, "metadata": {}},
                  {"n": 3, "corpus": "workers", "id": "w3", "text": "Peoria", "score": 0.7, "metadata": {}}],
    "model": "llama3.1:8b", "provider": "ollama", "mode": "vector", "answered_by": "model", "corpora": ["workers"],
    "retrieved": 4, "usage": None, "note": None, "retrieval_ms": 12.0, "generation_ms": 800.0,
}


def test_from_rag_answer_keeps_citation_numbers_and_timings():
    rec = evidence.from_rag_answer(RAG_RESULT, outcome="success", created_at="2025-03-01T10:00:00+02:00")
    assert rec.kind == "rag_answer"
    assert rec.query == RAG_RESULT["question"] and rec.answer == RAG_RESULT["answer"]
    assert rec.citations == [Citation("w1", 1, "workers"), Citation("w3", 3, "workers")]
    assert rec.retrieved_ids == ["w1", "w3"]  # ask() returns the cited chunks only
    assert rec.outcome == 1 and rec.model == "llama3.1:8b" and rec.source == "rag:workers"
    assert rec.timings == {"retrieval_ms": 12.0, "generation_ms": 800.0}
    assert rec.created_at == dt.datetime(2025, 3, 1, 8, 0)  # naive UTC


def test_from_rag_answer_explicit_retrieved_and_stable_id():
    a = evidence.from_rag_answer(RAG_RESULT, retrieved=[{"id": "w1"}, "w2", 3], created_at="2025-03-01T10:00:00")
    b = evidence.from_rag_answer(dict(RAG_RESULT), retrieved=["w1"], created_at="2025-03-01T10:00:00")
    assert a.retrieved_ids == ["w1", "w2", "3"]
    assert a.id == b.id and a.id.startswith("ev_") and len(a.id) == 19


def test_extractive_rag_answer_has_no_model():
    extractive = {**RAG_RESULT, "model": None, "answered_by": "extractive"}
    rec = evidence.from_rag_answer(extractive, outcome=1)
    assert rec.model is None
    assert score_record(rec).missing == ("model",)


def test_from_observed_op():
    op = {"id": "op-17", "op": "ask", "origin": "http", "ts": "2025-03-02T08:00:00Z", "duration_ms": 912.5, "ok": True,
          "error_code": None, "input": {"question": "Who runs Gary?", "model": "tier:rag"},
          "output": {"answer": "Pat Kim [1].", "citations": [{"n": 1, "corpus": "sites", "id": 7}],
                     "model": "qwen2.5:7b", "retrieval_ms": 5.0}}
    rec = evidence.from_observed_op(op)
    assert (rec.id, rec.kind, rec.query, rec.answer, rec.model) == ("op-17", "op", "Who runs Gary?", "Pat Kim [1].",
                                                                      "qwen2.5:7b")
    assert rec.retrieved_ids == ["7"] and rec.citations == [Citation("7", 1, "sites")]
    assert rec.timings == {"duration_ms": 912.5, "retrieval_ms": 5.0}
    assert rec.outcome is None and rec.source == "observer:ask:op-17"


def test_from_observed_op_failure_and_hits():
    op = {"id": "op-18", "op": "matrix_search", "ts": "2025-03-02T08:00:00", "duration_ms": 3, "ok": False,
          "error_code": "timeout", "input": {"query": "forklift"}, "output": {"results": [{"id": "a"}, {"id": "b"}]}}
    rec = evidence.from_observed_op(op)
    assert rec.outcome == -1 and rec.retrieved_ids == ["a", "b"] and rec.answer is None
    assert score_record(rec).category == "reject"


def test_from_playbook_entry():
    entry = {"query": "best trainer near Rockford", "corpus": "workers", "answer_id": 42, "answer_text": "Gus Berg",
             "outcome": "success", "recorded_at": "2025-02-01T00:00:00"}
    rec = evidence.from_playbook_entry(entry)
    assert rec.kind == "playbook" and rec.retrieved_ids == ["42"] and rec.citations == [Citation("42", 1, "workers")]
    assert rec.outcome == 1 and rec.source == "playbook:workers/42"
    assert rec.id == evidence.from_playbook_entry(dict(entry)).id
    with pytest.raises(InvalidInput, match="answer_id"):
        evidence.from_playbook_entry({"query": "q", "corpus": "workers"})


def test_from_workflow_run_collects_nodes():
    run = {"id": "run-1", "workflow": "staffing", "status": "succeeded", "input": {"query": "IL forklift staff"},
           "started_at": "2025-03-03T00:00:00", "duration_ms": 1500, "rating": 4}
    nodes = [
        {"node": "search", "op": "matrix_search", "status": "ok", "input": {"query": "IL forklift"},
         "output": {"hits": [{"id": "w1"}, {"id": "w2"}]}, "duration_ms": 20},
        {"node": "answer", "op": "chat", "status": "ok", "input": {"model": "tier:rag"},
         "output": {"answer": "Ann [1] and Bo [2].", "citations": ["w1", "w2"]}, "duration_ms": 1400},
    ]
    rec = evidence.from_workflow_run(run, nodes)
    assert rec.kind == "workflow_run" and rec.query == "IL forklift staff" and rec.answer == "Ann [1] and Bo [2]."
    assert rec.retrieved_ids == ["w1", "w2"] and rec.model == "tier:rag" and rec.rating == 4
    assert rec.timings == {"duration_ms": 1500.0, "search_ms": 20.0, "answer_ms": 1400.0}
    assert rec.source == "workflow:staffing/run-1"
    failed = evidence.from_workflow_run({**run, "status": "failed", "rating": None}, nodes)
    assert failed.outcome == -1


@pytest.mark.parametrize(("field", "value"), [
    ("kind", "chat"), ("outcome", 0), ("outcome", True), ("rating", 6), ("rating", 4.5), ("query", 3),
    ("retrieved_ids", "w1"), ("citations", [{"n": 1}]), ("citations", [{"id": "a", "n": "1"}]),
    ("timings", {"x": -1}), ("created_at", "yesterday"), ("colour", "red"),
])
def test_from_dict_refuses_bad_fields_by_name(field, value):
    raw = {"id": "r1", "kind": "op", "query": "q", "answer": "a", field: value}
    with pytest.raises(InvalidInput) as err:
        EvidenceRecord.from_dict(raw)
    assert err.value.details["field"] == field


def test_to_dict_round_trip():
    rec = evidence.from_rag_answer(RAG_RESULT, outcome=1, rating=5, created_at="2025-03-01T10:00:00")
    again = EvidenceRecord.from_dict(rec.to_dict())
    assert again == rec


def test_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "kind": "op", "query": "q", "answer": "x"}\n\n{"id": "b", "kind": "nope"}\n')
    with pytest.raises(InvalidInput, match="line 3"):
        evidence.load_jsonl(path)


def test_store_and_load_through_a_lake_transaction(lake):
    recs = [evidence.from_rag_answer(RAG_RESULT, outcome=1, created_at="2025-03-01T10:00:00"),
            evidence.from_playbook_entry({"query": "q", "corpus": "workers", "answer_id": "w9", "outcome": -1}),
            EvidenceRecord("empty", "op", None, None)]
    scores = [score_record(r) for r in recs]
    cur = lake.cursor()
    assert evidence.load_records(cur) == []  # no table yet
    assert lake.ctx.transaction(cur, lambda c: evidence.store_records(c, recs, scores)) == 3
    lake.ctx.transaction(cur, lambda c: evidence.store_records(c, recs[:1], scores[:1]))  # replaces, no duplicate
    loaded = evidence.load_records(cur)
    assert sorted(r.id for r in loaded) == sorted(r.id for r in recs)
    assert {r.id: r for r in loaded} == {r.id: r for r in recs}
    pairs = evidence.load_scored(cur, kind="rag_answer")
    assert pairs == [(recs[0], scores[0].category)]
    assert evidence.load_records(cur, ids=["empty"]) == [recs[2]]


def test_store_refuses_mismatched_scores(lake):
    rec = EvidenceRecord("a", "op", "q", "a")
    with pytest.raises(InvalidInput, match="scores"):
        evidence.store_records(lake.cursor(), [rec], [])

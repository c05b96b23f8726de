"""The distillation scorer: each rule of its table, citation coverage, versioning, the fixtures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.scorer import (
    CATEGORIES,
    SCORER_VERSION,
    Rules,
    at_least,
    citation_coverage,
    score_record,
    sentences,
)
from lakehouse.errors import InvalidInput

FIXTURES = Path(__file__).parent / "fixtures" / "distillation"


def make(answer: str = "Ann drives forklifts [1].", *, citations=("w1",), retrieved=("w1", "w2"), model="m",
         outcome=None, rating=None, query="Who drives forklifts?") -> EvidenceRecord:
    return EvidenceRecord("r", "rag_answer", query, answer, list(retrieved), list(citations), model, outcome, rating)


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "records.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", fixture_rows(), ids=lambda row: row["record"]["id"])
def test_fixture_categories(row):
    score = score_record(EvidenceRecord.from_dict(row["record"]))
    assert (score.category, score.rule) == (row["expect"]["category"], row["expect"]["rule"])
    assert score.scorer_version == SCORER_VERSION


def test_fixtures_cover_every_category_and_rule():
    rows = fixture_rows()
    assert len(rows) >= 20
    assert {r["expect"]["category"] for r in rows} == set(CATEGORIES)
    assert {r["expect"]["rule"] for r in rows} == {"no_text", "negative_outcome", "low_rating", "ungrounded", "gold",
                                                    "usable", "weak"}


def test_sentences_keep_a_trailing_marker_with_its_sentence():
    assert sentences("Ann is in IL. [1] Bob is in WI [2]!\nScore 0.75 here.") == \
        ["Ann is in IL [1].", "Bob is in WI [2]!", "Score 0.75 here."]
    assert sentences("[1] [2]") == []


@pytest.mark.parametrize(("answer", "citations", "retrieved", "expected"), [
    ("A [1]. B [2].", [{"n": 1, "id": "w1"}, {"n": 2, "id": "w2"}], ["w1", "w2"], 1.0),
    ("A [1]. B [2].", [{"n": 1, "id": "w1"}, {"n": 2, "id": "x"}], ["w1", "w2"], 0.5),  # [2] cites an unretrieved row
    ("A [1, 2]. B. C.", ["w1", "w2"], ["w2"], 0.3333),                                   # one marker group suffices
    ("A [4].", ["w1"], ["w1"], 0.0),                                                      # no citation numbered 4
    ("A whole answer.", ["w1", "x"], ["w1"], 0.5),                                        # no markers: citations
    ("A whole answer.", [], ["w1"], None),
])
def test_citation_coverage(answer, citations, retrieved, expected):
    assert citation_coverage(make(answer, citations=citations, retrieved=retrieved)) == expected


def test_rule_order_negative_outcome_beats_high_rating():
    assert score_record(make(outcome=-1, rating=5)).rule == "negative_outcome"


def test_gold_needs_every_field():
    assert score_record(make(outcome=1)).category == "gold"
    for missing in ({"model": None}, {"retrieved": ()}):
        rec = make(outcome=1, **missing)
        score = score_record(rec)
        assert score.category != "gold"
    assert score_record(make(outcome=1, model=None)).missing == ("model",)


def test_lukewarm_rating_caps_at_usable():
    assert score_record(make(outcome=1, rating=3)).category == "usable"
    assert score_record(make(rating=4)).category == "gold"


def test_reason_is_deterministic_and_readable():
    score = score_record(make(outcome=1, model=None))
    assert score.reason == "usable: acceptable feedback and grounding (outcome +1; rating none; coverage 1.00; missing model)"
    assert score == score_record(make(outcome=1, model=None))
    assert score.to_dict()["missing"] == ["model"]


def test_changed_rules_change_the_version_and_the_verdict():
    strict = Rules(version="distill-scorer/2-test", gold_coverage=1.01)
    rec = make(outcome=1)
    assert score_record(rec).category == "gold"
    score = score_record(rec, strict)
    assert (score.category, score.scorer_version) == ("usable", "distill-scorer/2-test")


def test_category_order():
    assert at_least("gold", "usable") and at_least("usable", "usable") and not at_least("weak", "usable")
    with pytest.raises(InvalidInput, match="unknown category"):
        at_least("great", "usable")


def test_score_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        score_record(make()).category = "gold"  # type: ignore[misc]

"""SFT export and the contamination firewall: rules, held-out formats, the JSONL shape, the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.export import DEFAULT_SYSTEM_PROMPT, export_sft
from lakehouse.engine.distill.firewall import Firewall, HoldoutText, load_holdout, normalise
from lakehouse.engine.embedders import get_embedder
from lakehouse.errors import InvalidInput

FIXTURES = Path(__file__).parent / "fixtures" / "distillation"
HOLDOUT = FIXTURES / "holdout.jsonl"


@pytest.fixture(scope="module")
def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "records.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hash_embed():
    return get_embedder("hash").embed


def records(rows: list[dict]) -> list[EvidenceRecord]:
    return [EvidenceRecord.from_dict(r["record"]) for r in rows]


def outcome_of(report, record_id: str):
    dropped = {d.id: d for d in report.dropped}
    d = dropped.get(record_id)
    if d is None:
        return "kept"
    if d.stage == "category":
        return "category"
    m = d.matches[0]
    return {"rule": m.rule, "field": m.field, "holdout_id": m.holdout_id, "holdout_field": m.holdout_field}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- acceptance: the fixtures ------------------------------------------------------------------------


def test_fixture_export_outcomes(tmp_path, fixture_rows, hash_embed):
    report = export_sft(records(fixture_rows), tmp_path / "sft.jsonl", holdout=HOLDOUT, embed=hash_embed)
    got = {r["record"]["id"]: outcome_of(report, r["record"]["id"]) for r in fixture_rows}
    assert got == {r["record"]["id"]: r["expect"]["export"] for r in fixture_rows}
    kept = [r["record"]["id"] for r in fixture_rows if r["expect"]["export"] == "kept"]
    lines = read_jsonl(tmp_path / "sft.jsonl")
    assert [line["metadata"]["id"] for line in lines] == kept  # input order
    assert report.written == len(kept) and report.considered == len(fixture_rows)
    assert report.firewall == {"holdout_items": 5, "holdout_texts": 8, "rules": ["exact", "normalised", "ngram", "embedding"],
                               "cosine_threshold": 0.9, "ngram": 13}


def test_fixture_export_without_embedder_keeps_the_paraphrase(tmp_path, fixture_rows):
    report = export_sft(records(fixture_rows), tmp_path / "sft.jsonl", holdout=HOLDOUT)
    for row in fixture_rows:
        expected = row["expect"]["export"]
        if isinstance(expected, dict) and expected["rule"] == "embedding":
            expected = "kept"
        assert outcome_of(report, row["record"]["id"]) == expected
    assert report.firewall["rules"] == ["exact", "normalised", "ngram"]


def test_fixture_export_gold_only(tmp_path, fixture_rows):
    report = export_sft(records(fixture_rows), tmp_path / "gold.jsonl", min_category="gold", holdout=HOLDOUT)
    metas = [line["metadata"] for line in read_jsonl(tmp_path / "gold.jsonl")]
    assert metas and {m["category"] for m in metas} == {"gold"}
    below = [d for d in report.dropped if d.stage == "category"]
    assert {d.category for d in below} == {"usable", "weak", "reject"}


# -- the JSONL shape and the report ------------------------------------------------------------------


def test_chat_format_line(tmp_path):
    rec = EvidenceRecord("r1", "rag_answer", "Who drives?", "Ann drives [1].", ["w1"], [{"n": 1, "corpus": "workers",
                         "id": "w1"}], "llama3.1:8b", 1, None, {}, "2025-03-01T00:00:00", "rag:workers")
    report = export_sft([rec], tmp_path / "out" / "sft.jsonl", system_prompt="Be brief.")
    [line] = read_jsonl(tmp_path / "out" / "sft.jsonl")
    assert line["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who drives?"},
                                {"role": "assistant", "content": "Ann drives [1]."}]
    assert line["metadata"] == {"id": "r1", "kind": "rag_answer", "category": "gold", "scorer_version": "distill-scorer/1",
                                "model": "llama3.1:8b", "source": "rag:workers", "citations": ["w1"],
                                "created_at": "2025-03-01T00:00:00"}
    assert report.to_dict()["written"] == 1 and report.scorer_versions == ["distill-scorer/1"]
    assert DEFAULT_SYSTEM_PROMPT


def test_export_is_byte_identical_across_runs(tmp_path, fixture_rows, hash_embed):
    a = export_sft(records(fixture_rows), tmp_path / "a.jsonl", holdout=HOLDOUT, embed=hash_embed)
    b = export_sft(records(fixture_rows), tmp_path / "b.jsonl", holdout=HOLDOUT, embed=hash_embed)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert json.dumps({**a.to_dict(), "path": ""}) == json.dumps({**b.to_dict(), "path": ""})


def test_export_replaces_the_file_whole(tmp_path):
    out = tmp_path / "sft.jsonl"
    out.write_text("old\n")
    export_sft([], out)
    assert out.read_text() == "" and [p.name for p in tmp_path.iterdir()] == ["sft.jsonl"]


def test_export_refuses_unknown_min_category(tmp_path):
    with pytest.raises(InvalidInput, match="unknown category"):
        export_sft([], tmp_path / "x.jsonl", min_category="great")
    assert not (tmp_path / "x.jsonl").exists()


# -- the firewall ------------------------------------------------------------------------------------


def test_normalise():
    assert normalise("  Which  FORKLIFT-operators, in IL?\n") == "which forklift operators in il"
    assert normalise("Ｏｓｈａ＿１０") == "osha 10"  # NFKC folds full-width forms


def test_each_rule_and_its_precedence():
    hold = [HoldoutText("h1", "question", "How many welders are certified in Ohio?"),
            HoldoutText("h2", "answer", "one two three four five six seven eight nine ten eleven twelve thirteen")]
    fw = Firewall(hold, ngram=13)
    [exact], [norm], [gram], none, empty = fw.check([
        {"query": "How many welders are certified in Ohio?  "},
        {"query": "how many WELDERS are certified, in ohio"},
        {"answer": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"},
        {"answer": "one two three four five six seven eight nine ten eleven twelve"},  # 12 tokens only
        {"query": None, "answer": "  "},
    ])
    assert (exact.rule, exact.holdout_id, exact.holdout_field) == ("exact", "h1", "question")
    assert norm.rule == "normalised"
    assert (gram.rule, gram.field, gram.detail) == ("ngram", "answer", " ".join(
        "one two three four five six seven eight nine ten eleven twelve thirteen".split()))
    assert none == [] and empty == []


def test_short_holdout_text_counts_when_it_appears_whole():
    fw = Firewall([HoldoutText("q5", "question", "Which drivers hold a hazmat card?"),
                   HoldoutText("q4", "question", "Who runs Gary?")])  # 4 tokens: too short to be a gram
    [[hit], partial, short] = fw.check([{"query": "Quick: which drivers hold a HAZMAT card, and where?"},
                                        {"query": "which drivers hold a hazmat licence"},
                                        {"answer": "Nobody knows who runs Gary today."}])
    assert (hit.rule, hit.holdout_id, hit.detail) == ("ngram", "q5", "which drivers hold a hazmat card")
    assert partial == [] and short == []


def test_embedding_rule_uses_threshold_and_reports_cosine():
    vectors = {"held": [1.0, 0.0], "near": [0.95, 0.312], "far": [0.0, 1.0]}
    fw = Firewall([HoldoutText("h", "text", "held")], embed=lambda texts: np.array([vectors[t] for t in texts]),
                  cosine_threshold=0.9)
    [[near], far] = fw.check([{"query": "near"}, {"query": "far"}])
    assert near.rule == "embedding" and near.detail.startswith("cosine 0.9")
    assert far == []


def test_every_matching_field_is_reported():
    fw = Firewall([HoldoutText("h1", "question", "Q one"), HoldoutText("h2", "answer", "A two")])
    [matches] = fw.check([{"query": "Q one", "answer": "a two!"}])
    assert [(m.field, m.rule, m.holdout_id) for m in matches] == [("query", "exact", "h1"), ("answer", "normalised", "h2")]


@pytest.mark.parametrize("bad", [{"ngram": 0}, {"ngram": True}, {"cosine_threshold": 0}, {"cosine_threshold": 1.5}])
def test_firewall_settings_are_checked(bad):
    with pytest.raises(InvalidInput):
        Firewall([], **bad)


# -- held-out formats --------------------------------------------------------------------------------


def test_holdout_jsonl_fixture():
    texts = load_holdout(HOLDOUT)
    assert [(t.item_id, t.field) for t in texts[:2]] == [("eval-001", "question"), ("eval-001", "answer")]
    assert texts[-1] == HoldoutText("line:5", "text", "Which drivers have a hazmat endorsement?")


def test_holdout_csv_and_text(tmp_path):
    csv_path = tmp_path / "eval.csv"
    csv_path.write_text('id,question,answer\nq1,"Who, exactly?",Ann\nq2,Where?,\n')
    assert load_holdout(csv_path) == [HoldoutText("q1", "question", "Who, exactly?"), HoldoutText("q1", "answer", "Ann"),
                                      HoldoutText("q2", "question", "Where?")]
    txt = tmp_path / "eval.txt"
    txt.write_text("first\n\n  second  \n")
    assert load_holdout(txt) == [HoldoutText("line:1", "text", "first"), HoldoutText("line:3", "text", "second")]


def test_holdout_rows():
    assert load_holdout(["a", {"id": 7, "query": "b"}]) == [HoldoutText("row:1", "text", "a"),
                                                           HoldoutText("7", "query", "b")]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("eval.jsonl", '{"question": "ok"}\nnot json\n', "line 2"),
    ("eval.jsonl", '{"id": "x", "score": 1}\n', "no held-out text"),
    ("eval.csv", "id,score\n1,2\n", "header needs one of"),
    ("eval.parquet", "x", "use .jsonl"),
])
def test_holdout_files_refused_with_the_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        load_holdout(path)


def test_missing_holdout_file(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_holdout(tmp_path / "nope.jsonl")

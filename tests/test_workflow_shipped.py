"""The shipped workflows end to end with deterministic loopback models: lakehouse-architect-review (G3.8.A: a YAML
of Archon's shape runs its three prompts in topological order) and knowledge-pipeline (extract, validate, check,
consensus, red team, pipeline, questions, a cited Markdown document as a dataset). pr-audit and scrum-review
have their own modules (test_workflow_audit.py, test_workflow_scrum.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from llm_servers import LLMServer, llm_fixture, srv_fixture  # noqa: F401
from workflow_lakes import wlake_fixture  # noqa: F401

import lakehouse
from lakehouse.engine.workflows.knowledge import agreement
from lakehouse.errors import Unprocessable


def test_g3_8_a_architect_review_runs_shape_weakness_improvement_in_order(wlake: lakehouse.Lake, srv: LLMServer,
                                                                          tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "store.py").write_text('def save(rows):\n    """Write rows to disk."""\n    open("x", "w").write(str(rows))\n')
    wlake.build_corpus("code", code, "code")
    out = wlake.ops.call("workflow.run", workflow="lakehouse-architect-review",
                         input={"corpus": "code", "focus": "storage"})
    assert out["status"] == "succeeded", out["error"]
    assert list(out["nodes"]) == ["context", "shape", "weakness", "improvement"]
    prompts = [r.body["messages"][-1]["content"] for r in srv.requests]
    assert len(prompts) == 3 and all(r.body["model"] == "frontier" for r in srv.requests)  # tier frontier_review
    assert "store.py:store.save" in prompts[0]  # the retrieved code reached the first step
    assert out["nodes"]["shape"]["output"] == "echo: " + prompts[0]
    assert out["nodes"]["shape"]["output"] in prompts[1] and out["nodes"]["weakness"]["output"] in prompts[2]
    times = [(out["nodes"][n]["started_at"], out["nodes"][n]["finished_at"]) for n in ("shape", "weakness", "improvement")]
    assert times[0][1] <= times[1][0] and times[1][1] <= times[2][0]


# -- knowledge-pipeline ---------------------------------------------------------------------------------

ROWS = [
    {"id": "r1", "text": "Forklifts require operators with OSHA-10 certification."},
    {"id": "r2", "text": "Forklifts are inspected before every shift."},
    {"id": "r3", "text": "Bakers start work at four in the morning."},
    {"id": "r4", "text": "Bakers wear hairnets near the ovens."},
]
INVENTED = "Forklifts can lift ten tonnes."  # stated by no row: the hallucination check must drop it
_ROW = re.compile(r"^\[([^\]]+)\] (.*)$", re.MULTILINE)


class KnowledgeModel:
    """The loopback model of the knowledge pipeline: it reads what each step sends and answers as a careful model
    would, except where a test wants a flaw (an invented fact, an unsure rating, a disagreeing pass)."""

    def __init__(self, passes: list[str | int]) -> None:
        self.passes = passes  # per extraction pass: "all" (every row + the invented fact) or the index of one row
        self.extractions = 0

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        system, user = messages[0]["content"], messages[-1]["content"]
        if system.startswith("You extract knowledge"):
            return self.extract(user)
        if system.startswith("You check claims"):
            return self.check(user)
        if user.startswith("Rate how well"):
            facts = json.loads(_between(user, "facts"))
            return json.dumps({"ratings": [{"fact": f["n"], "confidence": 3 if "hairnets" in f["claim"] else 8}
                                           for f in facts]})
        if user.startswith("Red-team"):
            facts = json.loads(_between(user, "facts"))
            return json.dumps({"challenges": [{"fact": f["n"], "problem": "every shift is not every day",
                                               "severity": "high"} for f in facts if "inspected" in f["claim"]]})
        if user.startswith("For each topic group"):
            groups = json.loads(_between(user, "groups"))
            return json.dumps({"questions": [{"topic": g["topic"], "question": f"What must I know about {g['topic']}?",
                                              "answer": f"{len(g['facts'])} fact(s) below."} for g in groups]})
        raise AssertionError(f"unexpected prompt: {user[:200]}")

    def extract(self, user: str) -> str:
        kind = self.passes[min(self.extractions, len(self.passes) - 1)]
        self.extractions += 1
        rows = sorted(_ROW.findall(user))  # the facts in row order, whatever the retrieval's ranking
        if kind != "all":
            rows = rows[kind:kind + 1]
        facts = [{"claim": text, "sources": [rid]} for rid, text in rows]
        if kind == "all":
            facts.append({"claim": INVENTED, "sources": ["r1"]})
        entities = [{"name": name, "type": "concept"} for name in ("Forklifts", "Bakers")]
        return "Here you are:\n```json\n" + json.dumps({"facts": facts, "entities": entities, "relations": []}) + "\n```"

    def check(self, user: str) -> str:
        verdicts = []
        for block in user.split("\n\n"):
            head, _, evidence = block.partition("\nEvidence:\n")
            n, claim = head.removeprefix("Claim ").split(": ", 1)
            stating = [rid for rid, text in _ROW.findall(evidence) if claim.rstrip(".").lower() in text.lower()]
            verdicts.append({"claim": int(n), "supported": bool(stating), "evidence": stating})
        return json.dumps({"verdicts": verdicts})


def _between(text: str, tag: str) -> str:
    return text.split(f"<{tag}>\n", 1)[1].split(f"\n</{tag}>", 1)[0]


@pytest.fixture
def handbook(wlake: lakehouse.Lake) -> str:
    wlake.create_corpus("handbook", rows=ROWS)
    return "handbook"


def run_pipeline(lake: lakehouse.Lake, **inputs: Any) -> dict[str, Any]:
    return lake.ops.call("workflow.run", workflow="knowledge-pipeline", input={
        "corpus": "handbook", "topic": "workplace rules", "dataset": "rules", "max_rows": 10, "max_passes": 4,
        **inputs})


def test_knowledge_pipeline_end_to_end(wlake: lakehouse.Lake, srv: LLMServer, handbook: str) -> None:
    model = KnowledgeModel(["all", 0, "all"])  # the second pass disagrees; the third agrees with the first
    srv.reply_fn = model
    out = run_pipeline(wlake)
    assert out["status"] == "succeeded", out["error"]
    nodes = {n: v["output"] for n, v in out["nodes"].items()}
    assert [f["claim"] for f in nodes["extract"]["facts"]] == [r["text"] for r in ROWS] + [INVENTED]
    check = nodes["check"]
    assert {r["claim"]: r["reason"] for r in check["rejected"]} == {
        ROWS[3]["text"]: "confidence 3 is below 5", INVENTED: "not supported by the source rows"}
    assert [(f["claim"], f["sources"]) for f in check["facts"]] == [(r["text"], [r["id"]]) for r in ROWS[:3]]
    consensus = nodes["consensus"]
    assert (consensus["agreed"], consensus["passes"], model.extractions) == (True, 3, 3)
    assert [f["passes"] for f in consensus["facts"]] == [3, 2, 2]
    pipeline = nodes["pipeline"]
    assert [g["topic"] for g in pipeline["groups"]] == ["Forklifts", "Bakers"]
    assert pipeline["removed"] == [{"n": 2, "claim": ROWS[1]["text"], "reason": "red team: every shift is not every day"}]
    published = nodes["publish"]
    assert published["dataset"] == "rules" and published["sections"] == 2
    document = published["markdown"]
    assert document.startswith("# workplace rules\n\n## What must I know about Forklifts?\n")
    assert f"- {ROWS[0]['text']} [1]" in document and f"- {ROWS[2]['text']} [2]" in document
    assert "[1] `r1`: Forklifts require operators" in document and INVENTED not in document
    assert "inspected" not in document.split("## Sources")[0]
    rows = wlake.query("SELECT section, kind, question, citations FROM rules ORDER BY section").rows
    assert rows == [[0, "document", None, []], [1, "section", "What must I know about Forklifts?", ["r1"]],
                    [2, "section", "What must I know about Bakers?", ["r3"]]]
    assert wlake.query("SELECT markdown FROM rules WHERE section = 0").rows[0][0] == document
    # every LLM call and retrieval is recorded as the node that made it
    recorded = [o for o in wlake.observer.ops if o.origin == "workflow"]
    assert {o.node for o in recorded if o.op == "vectors.search"} == {"check"}
    assert sum(o.op == "chat" and o.node == "consensus" for o in recorded) == 2


def test_consensus_stops_after_max_passes_without_agreement(wlake: lakehouse.Lake, srv: LLMServer,
                                                            handbook: str) -> None:
    srv.reply_fn = KnowledgeModel(["all", 0, 1])  # each later pass states one other fact: no two passes agree
    out = run_pipeline(wlake, max_passes=3)
    consensus = out["nodes"]["consensus"]["output"]
    assert (consensus["agreed"], consensus["passes"]) == (False, 3)
    assert [f["claim"] for f in consensus["facts"]] == [ROWS[0]["text"], ROWS[1]["text"]]  # repeated by a pass
    assert [f["claim"] for f in consensus["dropped"]] == [ROWS[2]["text"]]


def test_an_empty_corpus_fails_the_extraction_clearly(wlake: lakehouse.Lake) -> None:
    with pytest.raises(Unprocessable, match="no source rows"):
        wlake.ops.call("knowledge.extract", topic="t", rows=[], model="ollama/m")


def test_agreement_counts_one_to_one_matches() -> None:
    a = ["Forklifts need OSHA-10 operators.", "Bakers start at four."]
    assert agreement(a, list(reversed(a))) == 1.0
    assert agreement(a, a[:1]) == 0.5 and agreement([], []) == 1.0
    assert agreement(a, ["Forklifts need OSHA-10 operators.", "Forklifts need OSHA-10 operators!"]) == 0.5

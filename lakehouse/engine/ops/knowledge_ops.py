"""Operations of the knowledge pipeline (the shipped workflow `knowledge-pipeline`):

    knowledge.extract     one extraction pass over source rows: facts (cited), entities, relations
    knowledge.check       each fact above a confidence, verified against the source rows retrieved for it
    knowledge.consensus   extraction repeated until two passes agree (up to N); the facts that repeat
    knowledge.pipeline    clean, group by topic, rank
    knowledge.publish     the Markdown document, anchored on questions and citing source rows, written as a dataset

The LLM calls go through the `chat` operation and the retrieval through `vectors.search`: each is recorded,
as the workflow node that made it when a workflow runs these.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.types import CorpusName, DatasetName, NonBlank, Seconds
from lakehouse.engine.workflows import knowledge
from lakehouse.errors import Unprocessable

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


class SourceRow(Input):
    model_config = Input.model_config | {"extra": "allow"}  # matrix.search hits carry rank, score, corpus ...
    id: str | int
    text: str


class Fact(Input):
    model_config = Input.model_config | {"extra": "allow"}  # confidence, passes ... from earlier steps
    n: int = Field(ge=1, description="the fact's number in the first extraction pass")
    claim: NonBlank
    sources: list[str] = []


Rows = Field(max_length=2000, description="source rows {id, text} (e.g. matrix.search results)")


def _row_dicts(rows: list[SourceRow]) -> list[dict[str, Any]]:
    return [{"id": str(r.id), "text": r.text} for r in rows]


def _chat(lake: Lake, model: str, messages: list[dict[str, str]], timeout_s: float | None) -> str:
    return lake.ops.call("chat", model=model, messages=messages, timeout_s=timeout_s).content


def _one_pass(lake: Lake, topic: str, rows: list[dict[str, Any]], model: str, timeout_s: float | None) -> dict[str, Any]:
    if not rows:
        raise Unprocessable("there are no source rows to extract from (is the corpus empty?)", code="no_rows")
    text = _chat(lake, model, knowledge.extraction_messages(topic, rows), timeout_s)
    return knowledge.parse_extraction(text, [r["id"] for r in rows])


class KnowledgeExtract(Input):
    topic: NonBlank
    rows: list[SourceRow] = Rows
    model: NonBlank = Field(description="a model id or tier:<name>")
    timeout_s: Seconds | None = None


class KnowledgeCheck(Input):
    corpus: CorpusName = Field(description="the corpus the source rows come from")
    facts: list[Fact] = Field(max_length=2000)
    ratings: list[dict[str, Any]] = Field([], description="[{fact: n, confidence: 1-10}] (the validate step)")
    min_confidence: int = Field(5, ge=1, le=10)
    k: int = Field(3, ge=1, le=20, description="rows retrieved per claim, besides the ones it cites")
    model: NonBlank
    timeout_s: Seconds | None = None


def _check(lake: Lake, inp: KnowledgeCheck) -> dict[str, Any]:
    ratings = {}
    for r in inp.ratings:
        try:
            ratings[int(r["fact"])] = float(r["confidence"])
        except (KeyError, TypeError, ValueError):
            continue  # a rating the validator garbled rates nothing
    rejected, candidates = [], []
    for fact in inp.facts:
        confidence = ratings.get(fact.n)
        if confidence is None or confidence < inp.min_confidence:
            why = "unrated" if confidence is None else f"confidence {confidence:g} is below {inp.min_confidence}"
            rejected.append({"n": fact.n, "claim": fact.claim, "reason": why})
        else:
            candidates.append({**fact.model_dump(), "confidence": confidence})
    evidence = {}
    for fact in candidates:
        hits = lake.ops.call("vectors.search", corpus=inp.corpus, query=fact["claim"], k=inp.k)
        ids = list(dict.fromkeys([*fact["sources"], *(h.id for h in hits)]))
        found = lake.vectors.rows(inp.corpus, ids)
        evidence[fact["n"]] = [{"id": i, "text": found[i]["text"]} for i in ids if i in found]
    supported = {}
    if candidates:
        supported = knowledge.parse_verdicts(_chat(lake, inp.model, knowledge.check_messages(candidates, evidence),
                                                   inp.timeout_s))
    kept = []
    for fact in candidates:
        shown = {e["id"] for e in evidence[fact["n"]]}
        cited = [i for i in supported.get(fact["n"], []) if i in shown]
        if fact["n"] not in supported or not cited:
            why = "not supported by the source rows" if fact["n"] not in supported else "no source row cited"
            rejected.append({"n": fact["n"], "claim": fact["claim"], "reason": why})
        else:
            kept.append({**fact, "sources": cited})
    return {"facts": kept, "rejected": sorted(rejected, key=lambda r: r["n"])}


class KnowledgeConsensus(Input):
    topic: NonBlank
    rows: list[SourceRow] = Rows
    model: NonBlank
    first: dict[str, Any] = Field(description="the first extraction pass (knowledge.extract's output)")
    facts: list[Fact] = Field(max_length=2000, description="the facts to keep if passes repeat them (checked ones)")
    max_passes: int = Field(3, ge=2, le=8, description="extraction passes, the first included, at most")
    threshold: float = Field(0.7, ge=0, le=1, description="agreement (matched claims / claims) of two passes")
    timeout_s: Seconds | None = None


def _consensus(lake: Lake, inp: KnowledgeConsensus) -> dict[str, Any]:
    rows = _row_dicts(inp.rows)
    passes = [[str(f.get("claim", "")) for f in inp.first.get("facts") or [] if isinstance(f, dict)]]
    agreed, best = False, 0.0
    while not agreed and len(passes) < inp.max_passes:
        claims = [f["claim"] for f in _one_pass(lake, inp.topic, rows, inp.model, inp.timeout_s)["facts"]]
        score = max(knowledge.agreement(claims, earlier) for earlier in passes)
        best, agreed = max(best, score), score >= inp.threshold
        passes.append(claims)
    kept, dropped = [], []
    for fact in inp.facts:
        seen = knowledge.passes_stating(fact.claim, passes)
        (kept if seen >= 2 else dropped).append({**fact.model_dump(), "passes": seen})
    return {"agreed": agreed, "passes": len(passes), "agreement": round(best, 3), "facts": kept, "dropped": dropped}


class KnowledgePipeline(Input):
    facts: list[Fact] = Field(max_length=2000)
    challenges: list[dict[str, Any]] = Field([], description="[{fact: n, problem, severity}] (the red team step)")
    entities: list[dict[str, Any]] = Field([], description="[{name, type}] (knowledge.extract)")


class KnowledgePublish(Input):
    dataset: DatasetName = Field(description="the dataset the document is written to (replaced)")
    title: NonBlank
    groups: list[dict[str, Any]] = Field(description="knowledge.pipeline's groups")
    questions: list[dict[str, Any]] = Field([], description="[{topic, question, answer}] (the questions step)")
    rows: list[SourceRow] = Rows


def _publish(lake: Lake, inp: KnowledgePublish) -> dict[str, Any]:
    text, sections = knowledge.document(inp.title, inp.groups, inp.questions, {str(r.id): r.text for r in inp.rows})
    records = [{"section": 0, "kind": "document", "topic": None, "question": None, "markdown": text, "citations": []}]
    records += [{"section": i, "kind": "section", **s} for i, s in enumerate(sections, 1)]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    result = lake.ops.call("dataset.ingest", source=data, dataset=inp.dataset, format="ndjson", mode="replace",
                           filename=f"{inp.dataset}.ndjson")
    return {"dataset": inp.dataset, "rows": result.rows, "snapshot_id": result.snapshot_id, "sections": len(sections),
            "markdown": text}


OPS = [
    Op("knowledge.extract", "One extraction pass over source rows: cited facts, entities and relations (LLM).",
       KnowledgeExtract, lambda lake, inp: _one_pass(lake, inp.topic, _row_dicts(inp.rows), inp.model, inp.timeout_s),
       output=dict[str, Any], count=lambda d: len(d["facts"]), private=("topic",)),
    Op("knowledge.check", "Verify each confident fact against the source rows retrieved for it; keep the supported.",
       KnowledgeCheck, _check, output=dict[str, Any], count=lambda d: len(d["facts"]),
       summary=lambda d: {"kept": len(d["facts"]), "rejected": len(d["rejected"])}),
    Op("knowledge.consensus", "Repeat extraction until two passes agree (up to N); keep the facts passes repeat.",
       KnowledgeConsensus, _consensus, output=dict[str, Any], count=lambda d: len(d["facts"]),
       summary=lambda d: {"agreed": d["agreed"], "passes": d["passes"], "agreement": d["agreement"]}),
    Op("knowledge.pipeline", "Clean facts (red-team challenges, duplicates), group them by topic and rank them.",
       KnowledgePipeline, lambda lake, inp: knowledge.clean_group_rank([f.model_dump() for f in inp.facts],
                                                                       inp.challenges, inp.entities),
       output=dict[str, Any], count=lambda d: len(d["groups"])),
    Op("knowledge.publish", "A Markdown document of questions answered by cited facts, written as a dataset.",
       KnowledgePublish, _publish, output=dict[str, Any], writes=True, count=lambda d: d["rows"],
       summary=lambda d: {"dataset": d["dataset"], "sections": d["sections"]}),
]

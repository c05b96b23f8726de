"""`score_record(record) -> Score`: which evidence is good enough to train on. Versioned and
deterministic: the same record and the same `Rules` always give the same Score, so a persisted
category can be re-checked later (scorer drift) and any change of rule must bump `version`.

Inputs the rules read
    outcome     +1 / -1 / None from the record
    rating      1-5 / None from the record
    coverage    citation coverage in [0, 1], or None when the answer cites nothing (defined below)
    complete    query, answer, retrieved_ids and model are all present (`Score.missing` lists the gaps)

Citation coverage
    If the answer carries `[n]` markers: the share of its sentences that carry at least one marker
    resolving to a citation (by `n`) whose id is among `retrieved_ids`. Sentences are split at line
    breaks and at `.`, `!` or `?` followed by whitespace (a marker right after the full stop stays
    with its sentence); pieces without a word character are not sentences.
    Otherwise, if the record has citations: the share of citations whose id is among `retrieved_ids`
    (the answer as a whole is attributed to them, e.g. a playbook's recorded row).
    Otherwise None.

Rules (DEFAULT_RULES thresholds; the first row that matches decides)

    | rule             | condition                                                          | category |
    |------------------|--------------------------------------------------------------------|----------|
    | no_text          | query or answer missing or blank                                   | reject   |
    | negative_outcome | outcome == -1                                                      | reject   |
    | low_rating       | rating <= 2                                                        | reject   |
    | ungrounded       | coverage is not None and coverage < 0.25                           | reject   |
    | gold             | (outcome == +1 or rating >= 4), rating is None or >= 4, complete,  | gold     |
    |                  | coverage >= 0.8                                                    |          |
    | usable           | (outcome == +1 or rating >= 3), coverage is None or >= 0.5         | usable   |
    | weak             | anything else (no feedback at all, or coverage in [0.25, 0.5))     | weak     |
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.errors import InvalidInput

SCORER_VERSION = "distill-scorer/1"
CATEGORIES = ("gold", "usable", "weak", "reject")  # best first
_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)")
_SENTENCE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+")
_WORD = re.compile(r"\w")
_REQUIRED = ("query", "answer", "retrieved_ids", "model")


@dataclasses.dataclass(frozen=True)
class Rules:
    """The scorer's thresholds. Changing any of them is a new scorer: give it a new `version`."""

    version: str = SCORER_VERSION
    gold_coverage: float = 0.8
    usable_coverage: float = 0.5
    reject_coverage: float = 0.25
    gold_min_rating: int = 4
    usable_min_rating: int = 3
    reject_max_rating: int = 2


DEFAULT_RULES = Rules()


@dataclasses.dataclass(frozen=True)
class Score:
    """category (gold / usable / weak / reject), the rule that decided it, a human-readable reason,
    the scorer version, and the inputs: coverage and the missing fields."""

    category: str
    reason: str
    scorer_version: str
    rule: str
    coverage: float | None
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "reason": self.reason, "scorer_version": self.scorer_version,
                "rule": self.rule, "coverage": self.coverage, "missing": list(self.missing)}


def rank(category: str) -> int:
    """0 for gold ... 3 for reject; InvalidInput for anything else."""
    try:
        return CATEGORIES.index(category)
    except ValueError:
        raise InvalidInput(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}",
                           code="invalid_category") from None


def at_least(category: str, minimum: str) -> bool:
    """True when `category` is `minimum` or better."""
    return rank(category) <= rank(minimum)


def missing_fields(record: EvidenceRecord) -> tuple[str, ...]:
    """Which of query, answer, retrieved_ids and model the record lacks, in that order."""
    present = {"query": _has_text(record.query), "answer": _has_text(record.answer),
               "retrieved_ids": bool(record.retrieved_ids), "model": _has_text(record.model)}
    return tuple(name for name in _REQUIRED if not present[name])


def sentences(text: str) -> list[str]:
    """The answer's sentences, as citation coverage counts them (markers after a full stop move before it)."""
    text = _TRAILING_MARKERS.sub(lambda m: m.group(2) + m.group(1), text)
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if _WORD.search(_MARKER.sub("", s))]


def citation_coverage(record: EvidenceRecord) -> float | None:
    """See the module docstring; rounded to 4 decimals so equal inputs print equally."""
    retrieved = set(record.retrieved_ids)
    grounded_numbers = {c.n for c in record.citations if c.n is not None and c.id in retrieved}
    answer = record.answer or ""
    if _MARKER.search(answer):
        parts = sentences(answer)
        covered = sum(1 for s in parts if _marker_numbers(s) & grounded_numbers)
        return round(covered / len(parts), 4) if parts else None
    if record.citations:
        return round(sum(1 for c in record.citations if c.id in retrieved) / len(record.citations), 4)
    return None


def score_record(record: EvidenceRecord, rules: Rules = DEFAULT_RULES) -> Score:
    """Categorise one record by the rules table of the module docstring."""
    coverage = citation_coverage(record)
    missing = missing_fields(record)
    outcome, rating = record.outcome, record.rating

    def verdict(category: str, rule: str, why: str) -> Score:
        facts = [f"outcome {_signed(outcome)}", f"rating {rating if rating is not None else 'none'}",
                 f"coverage {'none' if coverage is None else f'{coverage:.2f}'}",
                 "complete" if not missing else "missing " + ",".join(missing)]
        return Score(category, f"{rule}: {why} ({'; '.join(facts)})", rules.version, rule, coverage, missing)

    if "query" in missing or "answer" in missing:
        return verdict("reject", "no_text", "no query or no answer to train on")
    if outcome == -1:
        return verdict("reject", "negative_outcome", "the outcome was a failure")
    if rating is not None and rating <= rules.reject_max_rating:
        return verdict("reject", "low_rating", f"rated {rules.reject_max_rating} or lower")
    if coverage is not None and coverage < rules.reject_coverage:
        return verdict("reject", "ungrounded", f"under {rules.reject_coverage:g} of the answer cites a retrieved row")
    positive = outcome == 1 or (rating is not None and rating >= rules.gold_min_rating)
    lukewarm = rating is not None and rating < rules.gold_min_rating
    if positive and not lukewarm and not missing and coverage is not None and coverage >= rules.gold_coverage:
        return verdict("gold", "gold", "positive feedback, complete and grounded")
    acceptable = outcome == 1 or (rating is not None and rating >= rules.usable_min_rating)
    if acceptable and (coverage is None or coverage >= rules.usable_coverage):
        return verdict("usable", "usable", "acceptable feedback and grounding")
    if not acceptable:
        return verdict("weak", "weak", "no positive feedback")
    return verdict("weak", "weak", f"under {rules.usable_coverage:g} of the answer cites a retrieved row")


def _marker_numbers(text: str) -> set[int]:
    return {int(n) for group in _MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", group)}


def _has_text(value: str | None) -> bool:
    return bool(value and value.strip())


def _signed(outcome: int | None) -> str:
    return "none" if outcome is None else f"{outcome:+d}"

"""The relevance filter: drop chunks that sit next to a true hit but are not about the query.

A chunk is kept when its relevance (cosine of query and chunk embeddings, optionally blended with
lexical overlap) clears an absolute threshold AND is within `margin` of the best candidate.
Every drop says why.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.settings import Settings

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an and are as at be by for from has have i in is it me of on or that the this to was were will with "
    "find show give get who what which where when how my our your any all some".split()
)


@dataclasses.dataclass
class Candidate:
    item: Any  # whatever the caller ranks (a MatrixHit, a dict)
    cosine: float
    text: str


@dataclasses.dataclass
class Verdict:
    item: Any
    relevance: float
    reason: str | None = None  # None when kept


def lexical_overlap(query: str, text: str) -> float:
    """Share of the query's content words that occur in the text."""
    words = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
    if not words:
        return 0.0
    have = set(_WORD.findall(text.lower()))
    return len(words & have) / len(words)


def judge(settings: Settings, query: str, candidates: Sequence[Candidate],
          threshold: float | None = None) -> tuple[list[Verdict], list[Verdict]]:
    """`apply` with the lake's relevance settings (`threshold` overrides its threshold)."""
    return apply(query, candidates, threshold=settings.relevance_threshold if threshold is None else threshold,
                 margin=settings.relevance_margin, lexical_weight=settings.relevance_lexical_weight)


def apply(query: str, candidates: Sequence[Candidate], *, threshold: float, margin: float,
          lexical_weight: float = 0.0) -> tuple[list[Verdict], list[Verdict]]:
    """(kept, dropped), each in input order."""
    scored = []
    for c in candidates:
        rel = c.cosine
        if lexical_weight:
            rel = (1 - lexical_weight) * rel + lexical_weight * lexical_overlap(query, c.text)
        scored.append((c, float(rel)))
    best = max((r for _, r in scored), default=0.0)
    kept, dropped = [], []
    for c, rel in scored:
        if rel < threshold:
            dropped.append(Verdict(c.item, rel, f"relevance {rel:.3f} is below the threshold {threshold:.3f}"))
        elif rel < best - margin:
            dropped.append(Verdict(c.item, rel, f"relevance {rel:.3f} is more than {margin:.3f} below "
                                                f"the best hit's {best:.3f}"))
        else:
            kept.append(Verdict(c.item, rel))
    return kept, dropped

"""The relevance filter over caller-supplied candidates (POST /v1/matrix/relevance)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.engine.matrix import relevance
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


def judge(lake: Lake, query: str, candidates: list[Any], *, threshold: float | None = None) -> dict[str, Any]:
    """Embed query and candidate texts with the default embedder; keep what the filter keeps."""
    for i, c in enumerate(candidates):
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or c.get("id") is None:
            raise InvalidInput(f"candidate {i} must be an object with 'id' and a string 'text'",
                               code="invalid_candidate", index=i)
    vectors = lake.vectors.embed([query] + [c["text"] for c in candidates], cache=False)
    qvec, cvecs = vectors[0], vectors[1:]
    cands = [relevance.Candidate(c, float(v @ qvec), c["text"]) for c, v in zip(candidates, cvecs)]
    kept, dropped = relevance.judge(lake.settings, query, cands, threshold)
    return {"kept": [{**v.item, "relevance": round(v.relevance, 4)} for v in kept],
            "dropped": [{**v.item, "relevance": round(v.relevance, 4), "reason": v.reason} for v in dropped]}

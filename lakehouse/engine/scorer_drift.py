"""Scorer drift: re-run the current scorer over (record, persisted category) pairs and count what moved.

    scorer_drift(load_scored(cur))                    # the lake's lh.evidence against today's scorer
    -> {"total": 40, "drifted": 3, "scorer_version": "distill-scorer/1",
        "shift_matrix": [{"from": "gold", "to": "gold", "count": 20}, {"from": "usable", "to": "weak", ...}]}

The shift matrix has one cell per (persisted, current) pair that occurs, the unchanged diagonal
included; `drifted` counts the off-diagonal records. Cells are sorted by count (descending), then
`from`, then `to`; `entries` (drifted records only) by record id. No set or dict iteration order
reaches the output, so `json.dumps` of two runs over the same pairs is byte-identical.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.scorer import Score, rank, score_record


def scorer_drift(pairs: Iterable[tuple[EvidenceRecord, str]],
                 scorer: Callable[[EvidenceRecord], Score] = score_record, *,
                 entries: bool = False) -> dict[str, Any]:
    """Compare each persisted category with `scorer`'s verdict today (see the module docstring).
    `scorer_version` is the current scorer's version (versions joined by "," if it reports several;
    None when there was nothing to score). With `entries`, list each drifted record."""
    cells: collections.Counter[tuple[str, str]] = collections.Counter()
    moved: list[dict[str, Any]] = []
    versions: set[str] = set()
    total = 0
    for record, persisted in pairs:
        rank(persisted)  # an unknown persisted category is bad input, not drift
        score = scorer(record)
        versions.add(score.scorer_version)
        cells[(persisted, score.category)] += 1
        total += 1
        if score.category != persisted:
            moved.append({"id": record.id, "from": persisted, "to": score.category, "reason": score.reason})
    out: dict[str, Any] = {
        "total": total,
        "drifted": len(moved),
        "scorer_version": ",".join(sorted(versions)) or None,
        "shift_matrix": [{"from": a, "to": b, "count": n}
                         for (a, b), n in sorted(cells.items(), key=lambda cell: (-cell[1], cell[0]))],
    }
    if entries:
        out["entries"] = sorted(moved, key=lambda e: (e["id"], e["from"], e["to"]))
    return out

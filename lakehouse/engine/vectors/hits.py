"""Ranked hits: the leaf every search strategy (vector, BM25, fused, matrix) returns and builds on."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lakehouse.engine.vectors.corpus import CorpusState

RRF_K = 60  # reciprocal rank fusion's constant: a hit at rank r scores 1 / (RRF_K + r)


@dataclasses.dataclass
class Hit:
    id: str
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def rrf_score(rank: int) -> float:
    return 1.0 / (RRF_K + rank)


def to_hits(state: CorpusState, keys: np.ndarray, scores: np.ndarray) -> list[Hit]:
    """(keys, scores) best first as ranked hits with the corpus's ids."""
    return [Hit(i, s, r) for r, (i, s) in enumerate(zip(state.ids[keys].tolist(), scores.tolist(), strict=True), 1)]

"""Drift between two samples of embeddings: statistics only (the lake wires them to corpora and windows).

    from lakehouse.engine.drift import embedding_drift
    report = embedding_drift(reference, current)   # two float32 matrices, rows x dims
"""

from __future__ import annotations

from lakehouse.engine.drift.embedding import DEFAULT_THRESHOLDS, TESTS, embedding_drift
from lakehouse.engine.drift.report import DriftReport, DriftTest

__all__ = ["DEFAULT_THRESHOLDS", "TESTS", "DriftReport", "DriftTest", "embedding_drift"]

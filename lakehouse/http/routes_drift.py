"""Drift routes: /v1/drift/scorer, /v1/drift/playbooks, /v1/drift/embeddings, /v1/drift/audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body

bp = Blueprint("drift", __name__)


@bp.post("/v1/drift/scorer")
def scorer() -> Any:
    """`{kind?, entries?, threshold?}` -> `{total, drifted, scorer_version, shift_matrix, entries?}`."""
    return call("drift.scorer", json_body(optional=True))


@bp.post("/v1/drift/playbooks")
def playbooks() -> Any:
    """`{corpus?, k?, relevance?, limit?, threshold?}` -> `{k, total, drifted, corpora, playbooks}` (oldest first)."""
    return call("drift.playbooks", json_body(optional=True))


@bp.post("/v1/drift/embeddings")
def embeddings() -> Any:
    """`{corpus, a, b, tests?, thresholds?, min_fired?, seed?}`, each side `{generation}`, `{ids_sql}` or
    `{since, until?}` -> `{drifted, fired, tests: [{name, statistic, p_value, threshold, drifted, details}], a, b}`."""
    return call("drift.embeddings", json_body())


@bp.post("/v1/drift/audit")
def audit() -> Any:
    """`{previous?, threshold?, min_delta?}` -> the latest audit run against its baseline, `flagged` changes."""
    return call("drift.audit", json_body(optional=True))

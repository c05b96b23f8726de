"""Distillation routes: /v1/distill/collect, /v1/distill/score, /v1/distill/export."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body

bp = Blueprint("distill", __name__)


@bp.post("/v1/distill/collect")
def collect() -> Any:
    """`{sources?, ops?, since?, limit?, records?, rag_answers?}` -> `{stored, by_kind, by_category, skipped}`."""
    return call("distill.collect", json_body(optional=True))


@bp.post("/v1/distill/score")
def score() -> Any:
    """`{records}` or `{ids}` -> `{scorer_version, by_category, results: [{id, category, reason, ...}]}`."""
    return call("distillation.score", json_body())


@bp.post("/v1/distill/export")
def export() -> Any:
    """`{out, min_category?, holdout?, kind?, embed?}` -> the export and firewall report (`out` inside
    `<root>/exports/`)."""
    return call("distill.export", json_body())

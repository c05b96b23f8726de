"""Pathway memory routes: /v1/pathways (record), /lookup, /<id>/replay, /fingerprint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body

bp = Blueprint("pathways", __name__)


@bp.post("/v1/pathways")
def record() -> tuple[Any, int]:
    """`{text, steps: [{op, input, output?}], annotations?, hints?}` -> 201, the stored pathway."""
    return call("pathways.record", json_body()), 201


@bp.post("/v1/pathways/lookup")
def lookup() -> Any:
    """`{text, k?}` -> `{results: [{score, pathway}]}`."""
    return call("pathways.lookup", json_body())


@bp.post("/v1/pathways/<id>/replay")
def replay(id: str) -> Any:  # noqa: A002 - the route's own word
    """`{stop_on_failure?}` -> `{pathway_id, ok, succeeded, failed, skipped, steps}`; each step runs as this request."""
    return call("pathways.replay", json_body(optional=True), id=id)


@bp.post("/v1/pathways/fingerprint")
def fingerprint() -> Any:
    """`{text}` -> `{buckets: [32 ints]}`."""
    return call("pathways.fingerprint", json_body())

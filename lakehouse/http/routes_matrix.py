"""Matrix routes: /v1/matrix/search, /v1/matrix/corpora, /v1/matrix/relevance, /v1/matrix/playbooks[...]."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.errors import InvalidInput
from lakehouse.http import routes_vectors
from lakehouse.http.app import call, json_body, query_args

bp = Blueprint("matrix", __name__)


@bp.post("/v1/matrix/search")
def search() -> Any:
    """`{query, corpora?, mode?, force_mode?, model?, k_per_corpus?, top?, relevance?, threshold?,
    metadata_filter?, where?, use_playbook?}` -> `{mode, mode_reason, corpora, results, dropped, elapsed_ms}`."""
    return call("matrix.search", json_body())


# the same listing as /v1/corpora, under the matrix prefix too
bp.add_url_rule("/v1/matrix/corpora", view_func=routes_vectors.corpora, methods=["GET"])


@bp.post("/v1/matrix/relevance")
def relevance() -> Any:
    """`{query, candidates: [{id, text, ...}], threshold?}` -> `{kept, dropped}`."""
    return call("matrix.relevance", json_body())


@bp.post("/v1/matrix/playbooks/record")
def record_one() -> tuple[Any, int]:
    """One entry: 201 with its id, or the entry's error as a 400."""
    out = call("playbook.record", entries=[json_body()])
    if out["failed"]:
        err = out["results"][0]["error"]
        raise InvalidInput(err["message"], code=err["code"], field=err.get("field"))
    return out, 201


@bp.post("/v1/matrix/playbooks/bulk")
def record_bulk() -> Any:
    """`{entries: [...]}` (or a bare array) -> `{recorded, failed, results: [{index, id | error}]}`."""
    body = json_body(array=True)
    return call("playbook.record", entries=body) if isinstance(body, list) else call("playbook.record", body)


@bp.get("/v1/matrix/playbooks")
def lookup() -> Any:
    return call("playbook.lookup", query_args(), text_args=True)

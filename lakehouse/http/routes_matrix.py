"""Matrix routes: /v1/matrix/search, /v1/matrix/corpora, /v1/matrix/relevance, /v1/matrix/playbooks[...]."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from lakehouse.engine.matrix.relevance_api import judge
from lakehouse.errors import InvalidInput
from lakehouse.http import routes_vectors
from lakehouse.http.app import field, get_lake, json_body

bp = Blueprint("matrix", __name__)


@bp.post("/v1/matrix/search")
def search() -> dict[str, Any]:
    """`{query, corpora?, mode?, force_mode?, model?, k_per_corpus?, top?, relevance?, threshold?,
    metadata_filter?, use_playbook?}` -> `{mode, mode_reason, results, dropped, elapsed_ms}`."""
    body = json_body()
    threshold = field(body, "threshold", (int, float))
    res = get_lake().matrix_search(
        field(body, "query", str, required=True), field(body, "corpora", list),
        k_per_corpus=field(body, "k_per_corpus", int, default=6), top=field(body, "top", int, default=8),
        relevance=field(body, "relevance", bool), threshold=None if threshold is None else float(threshold),
        model=field(body, "model", str), mode=field(body, "mode", str), force_mode=field(body, "force_mode", str),
        metadata_filter=field(body, "metadata_filter", (dict, str)),
        use_playbook=bool(field(body, "use_playbook", bool)), origin="http")
    return res.to_dict()


# the same listing as /v1/corpora, under the matrix prefix too
bp.add_url_rule("/v1/matrix/corpora", view_func=routes_vectors.corpora, methods=["GET"])


@bp.post("/v1/matrix/relevance")
def relevance() -> dict[str, Any]:
    """`{query, candidates: [{id, text, score?}], threshold?}` -> `{kept, dropped}`."""
    body = json_body()
    threshold = field(body, "threshold", (int, float))
    return judge(get_lake(), field(body, "query", str, required=True),
                 field(body, "candidates", list, required=True),
                 threshold=None if threshold is None else float(threshold))


@bp.post("/v1/matrix/playbooks/record")
def record_one() -> tuple[dict[str, Any], int]:
    out = get_lake().record_playbooks([json_body()])
    if out["failed"]:
        err = out["results"][0]["error"]
        raise InvalidInput(err["message"], code=err["code"], field=err.get("field"))
    return out, 201


@bp.post("/v1/matrix/playbooks/bulk")
def record_bulk() -> dict[str, Any]:
    """`{entries: [...]}` (or a bare array) -> `{recorded, failed, results: [{index, id | error}]}`."""
    body = request.get_json(force=True)
    entries = body.get("entries") if isinstance(body, dict) else body
    if not isinstance(entries, list):
        raise InvalidInput("send {\"entries\": [...]} or a JSON array of entries", code="invalid_field",
                           field="entries")
    return get_lake().record_playbooks(entries)


@bp.get("/v1/matrix/playbooks")
def lookup() -> dict[str, Any]:
    query = request.args.get("query", "").strip()
    if not query:
        raise InvalidInput("query parameter 'query' is required", code="missing_field", field="query")
    try:
        k = int(request.args.get("k", "10"))
    except ValueError as exc:
        raise InvalidInput("query parameter 'k' must be an integer", code="invalid_field", field="k") from exc
    lake = get_lake()
    return {"query": query, "results": [{**e.to_dict(), "similarity": sim} for e, sim in lake.playbooks.lookup(query, k)]}


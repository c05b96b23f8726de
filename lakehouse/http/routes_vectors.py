"""Vector routes: /v1/embed, /vectors/search, /vectors/hybrid, /v1/text/search, /v1/hybrid/search,
/v1/corpora[...]. Each forwards to an operation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.errors import InvalidInput
from lakehouse.http.app import call, json_body

bp = Blueprint("vectors", __name__)


@bp.post("/v1/embed")
def embed() -> Any:
    return call("embed", json_body())


def _vector_body() -> dict[str, Any]:
    """`vector` (an array) is the JSON name of a vector query; `query` is text."""
    body = json_body()
    if "vector" in body:
        if "query" in body:
            raise InvalidInput("give one of 'query' (text) or 'vector' (an array of numbers), not both",
                               code="invalid_query", field="query")
        body["query"] = body.pop("vector")
    return body


@bp.post("/vectors/search")
def search() -> Any:
    """`{corpus, query | vector, k?, ids?}` -> `{corpus, results: [{id, score, rank, row | text + metadata}]}`."""
    return call("vectors.search", {"with_rows": True, **_vector_body()})


@bp.post("/vectors/hybrid")
def hybrid() -> Any:
    """`{corpus, query | vector, k?, where?}`: the rows of vector_search(..., ids := (SELECT list(id) ... WHERE))."""
    return call("vectors.hybrid", _vector_body())


@bp.post("/v1/text/search")
def text_search() -> dict[str, Any]:
    body = json_body()
    return {"corpus": body.get("corpus"), "results": [h.to_dict() for h in call("text.search", body)]}


@bp.post("/v1/hybrid/search")
def hybrid_search() -> dict[str, Any]:
    body = json_body()
    return {"corpus": body.get("corpus"), "results": [h.to_dict() for h in call("hybrid.search", body)]}


@bp.get("/v1/corpora")
def corpora() -> dict[str, Any]:
    return {"corpora": call("corpus.list")}


@bp.post("/v1/corpora")
def create_corpus() -> tuple[Any, int]:
    """`{name, dataset | sql | rows, id?, text?, metadata?, embedder?, metric?, dtype?, replace?}`."""
    return call("corpus.create", json_body()), 201


@bp.post("/v1/corpora/build")
def build_corpus() -> tuple[Any, int]:
    """`{name, folder, kind: docs | code, max_chars?, embedder?, replace?}` (folder inside import_dirs)."""
    return call("corpus.build", json_body()), 201


@bp.get("/v1/corpora/<name>")
def corpus(name: str) -> Any:
    return call("corpus.describe", name=name)


@bp.delete("/v1/corpora/<name>")
def drop(name: str) -> Any:
    return call("corpus.drop", name=name)


@bp.post("/v1/corpora/<name>/add")
def add(name: str) -> Any:
    """`{rows: [{id, text, metadata?}]}`."""
    return call("corpus.add", json_body(), name=name)


@bp.post("/v1/corpora/<name>/sync")
def sync(name: str) -> Any:
    return call("corpus.sync", json_body(optional=True), name=name)


@bp.post("/v1/corpora/<name>/rebuild")
def rebuild(name: str) -> Any:
    return call("corpus.rebuild", json_body(optional=True), name=name)


@bp.post("/v1/corpora/<name>/rollback")
def rollback(name: str) -> Any:
    return call("corpus.rollback", json_body(optional=True), name=name)

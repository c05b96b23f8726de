"""Vector routes: /v1/embed, /vectors/search, /vectors/hybrid, /v1/corpora[...]."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from lakehouse.engine.safe_sql import check_read_only
from lakehouse.engine.vectors.filters import ids_where, with_rows
from lakehouse.errors import InvalidInput
from lakehouse.http.app import field, get_lake, json_body

bp = Blueprint("vectors", __name__)


@bp.post("/v1/embed")
def embed() -> dict[str, Any]:
    body = json_body()
    texts = field(body, "texts", list, required=True)
    if not all(isinstance(t, str) for t in texts):
        raise InvalidInput("field 'texts' must be an array of strings", code="invalid_field", field="texts")
    lake = get_lake()
    spec = field(body, "embedder", str) or lake.settings.embedder
    vectors = lake.vectors.embed(texts, spec, cache=False)
    return {"embedder": spec, "dim": int(vectors.shape[1]) if len(texts) else lake.vectors.embedder(spec).dim,
            "embeddings": vectors.tolist()}


def _query(body: dict[str, Any]) -> Any:
    query, vector = field(body, "query", str), field(body, "vector", list)
    if (query is None) == (vector is None):
        raise InvalidInput("give exactly one of 'query' (text) or 'vector' (array of numbers)", code="missing_field",
                           field="query")
    if vector is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector):
        raise InvalidInput("field 'vector' must be an array of numbers", code="invalid_field", field="vector")
    return query if query is not None else vector


@bp.post("/vectors/search")
def search() -> dict[str, Any]:
    """`{corpus, query | vector, k}` -> `{corpus, results: [{id, score, rank, row | text + metadata}]}`."""
    return _search(json_body(), where=None)


@bp.post("/vectors/hybrid")
def hybrid() -> dict[str, Any]:
    """`{corpus, query | vector, k, where?}`: the same rows as vector_search(..., ids := (SELECT list(id) ... WHERE))."""
    body = json_body()
    return {**_search(body, where=field(body, "where", str)), "where": body.get("where")}


def _search(body: dict[str, Any], *, where: str | None) -> dict[str, Any]:
    lake = get_lake()
    corpus = field(body, "corpus", str, required=True)
    k = field(body, "k", int, default=10)
    ids = ids_where(lake, corpus, where) if where is not None else None
    hits = lake.vector_search(corpus, _query(body), k, ids)
    return {"corpus": corpus, "results": with_rows(lake, corpus, hits)}


@bp.get("/v1/corpora")
def corpora() -> dict[str, Any]:
    return {"corpora": get_lake().corpora()}


@bp.post("/v1/corpora")
def create_corpus() -> tuple[dict[str, Any], int]:
    """`{name, dataset | sql, id?, text, metadata?, embedder?, metric?, dtype?, replace?}`."""
    body = json_body()
    sql = field(body, "sql", str)
    if sql is not None:
        check_read_only(sql)  # a request may read, never write, through a corpus definition
    text = body.get("text", "text")
    if not (isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))):
        raise InvalidInput("field 'text' must be a column name or an array of them", code="invalid_field", field="text")
    metadata = field(body, "metadata", list) or []
    if not all(isinstance(m, str) for m in metadata):
        raise InvalidInput("field 'metadata' must be an array of column names", code="invalid_field", field="metadata")
    out = get_lake().create_corpus(
        field(body, "name", str, required=True), sql=sql, dataset=field(body, "dataset", str),
        id=field(body, "id", str) or "id", text=text, metadata=metadata, embedder=field(body, "embedder", str),
        metric=field(body, "metric", str) or "cos", dtype=field(body, "dtype", str),
        replace=bool(field(body, "replace", bool)), progress=False)
    return out, 201


@bp.post("/v1/corpora/<name>/rebuild")
def rebuild(name: str) -> dict[str, Any]:
    return get_lake().rebuild_index(name)


@bp.post("/v1/corpora/<name>/rollback")
def rollback(name: str) -> dict[str, Any]:
    body = json_body() if request.get_data(cache=True) else {}  # the body is optional here
    return get_lake().rollback_index(name, field(body, "generation", int))


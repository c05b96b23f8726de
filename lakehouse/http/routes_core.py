"""Core routes: /health, /ingest, /sql, /datasets. Each forwards to an operation (lakehouse.engine.ops)."""

from __future__ import annotations

from typing import Any

import duckdb
from flask import Blueprint, request

import lakehouse
from lakehouse.errors import InvalidInput
from lakehouse.http.app import call, get_lake, json_body

bp = Blueprint("core", __name__)


@bp.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True, "version": lakehouse.__version__, "duckdb": duckdb.__version__,
            "datasets": get_lake().dataset_count()}


@bp.post("/ingest")
def ingest() -> tuple[Any, int]:
    """Multipart field `file`, or JSON `{"path": ...}` (a server-side path inside import_dirs); options in the
    query string, the form or the JSON body: dataset (required), format, mode, key."""
    fields: dict[str, Any] = request.args.to_dict()
    if request.mimetype == "multipart/form-data":
        fields.update(request.form.to_dict())
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput("send the data as multipart field 'file', or a JSON body with 'path'",
                               code="missing_field", field="file")
        fields.update(source=upload.stream, filename=upload.filename or None)
        result = call("dataset.ingest", fields)
    else:
        if not request.get_data(cache=True):
            raise InvalidInput("send the data as multipart field 'file', or a JSON body with 'path'",
                               code="missing_field", field="file")
        body = json_body()
        if "path" in body:
            if "source" in body:
                raise InvalidInput("give one of 'path' and 'source' (the same field), not both", code="invalid_source",
                                   field="path")
            body["source"] = body.pop("path")
        result = call("dataset.ingest", {**fields, **body})
    return result, 200 if result.skipped else 201


@bp.post("/sql")
def sql() -> Any:
    """`{"sql": "SELECT ...", "params"?: [..] | {..}, "max_rows"?: n, "timeout_s"?: s, "at_snapshot"?: n}`: one
    read-only query (of the lake as of snapshot n)."""
    return call("sql.query", json_body())


@bp.get("/datasets")
def datasets() -> dict[str, Any]:
    return {"datasets": call("dataset.list")}


@bp.get("/datasets/<name>")
def dataset(name: str) -> Any:
    return call("dataset.describe", name=name)


@bp.delete("/datasets/<name>")
def drop(name: str) -> Any:
    return call("dataset.drop", name=name)


@bp.post("/datasets/<name>/compact")
def compact(name: str) -> Any:
    return call("dataset.compact", json_body(optional=True), name=name)

"""Core routes: /health, /ingest, /sql, /datasets. Each parses the request and calls the engine."""

from __future__ import annotations

from typing import Any

import duckdb
from flask import Blueprint, request

import lakehouse
from lakehouse.engine.sources import resolve_import_path
from lakehouse.errors import InvalidInput
from lakehouse.http.app import field, get_lake, json_body

bp = Blueprint("core", __name__)


@bp.get("/health")
def health() -> dict[str, Any]:
    lake = get_lake()
    return {"ok": True, "version": lakehouse.__version__, "duckdb": duckdb.__version__,
            "lake": str(lake.root), "datasets": lake.dataset_count()}


@bp.post("/ingest")
def ingest() -> tuple[dict[str, Any], int]:
    """Multipart field `file`, or JSON `{"path": ...}` inside import_dirs; options in the query,
    the form or the JSON body: dataset (required), format, mode, key."""
    lake = get_lake()
    fields: dict[str, Any] = request.args.to_dict()
    if request.is_json:
        fields.update(json_body())
    else:
        fields.update(request.form.to_dict())
    options = {
        "dataset": field(fields, "dataset", str, required=True),
        "format": field(fields, "format", str) or "auto",
        "mode": field(fields, "mode", str) or "create",
        "key": field(fields, "key", str),
        "origin": "http",
    }
    if request.is_json:
        path = resolve_import_path(field(fields, "path", str, required=True), lake.settings.import_dirs)
        result = lake.ingest(path, **options)
    else:
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput("send the data as multipart field 'file', or a JSON body with 'path'",
                               code="missing_field", field="file")
        result = lake.ingest(upload.stream, filename=upload.filename or None, **options)
    return result.to_dict(), 200 if result.skipped else 201


@bp.post("/sql")
def sql() -> dict[str, Any]:
    """`{"sql": "SELECT ...", "params"?: [..] | {..}, "max_rows"?: n}`: one read-only query."""
    lake = get_lake()
    body = json_body()
    max_rows = field(body, "max_rows", int)
    if max_rows is not None and max_rows >= 0:
        # a client may ask for fewer rows than the server's cap, never for more
        max_rows = min(max_rows, lake.settings.max_rows)
    result = lake.query(field(body, "sql", str, required=True), field(body, "params", (list, dict)),
                        max_rows=max_rows, origin="http")
    return result.to_dict()


@bp.get("/datasets")
def datasets() -> dict[str, Any]:
    return {"datasets": get_lake().datasets()}


@bp.get("/datasets/<name>")
def dataset(name: str) -> dict[str, Any]:
    return get_lake().dataset(name)

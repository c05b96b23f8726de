"""What happened: /v1/observer/ops, /v1/observer/stats, /storage/errors, /hnsw/trials."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, query_args

bp = Blueprint("observer", __name__)


@bp.get("/v1/observer/ops")
def ops() -> dict[str, Any]:
    """`?op=&origin=&status=ok|error&since=&until=&limit=` -> `{ops: [...]}`, newest first."""
    return {"ops": call("observer.ops", query_args(), text_args=True)}


@bp.get("/v1/observer/stats")
def stats() -> Any:
    """`?window=1h` -> `{window, ops: [{op, origin, count, errors, error_rate, p50_ms, p95_ms, p99_ms}]}`."""
    return call("observer.stats", query_args(), text_args=True)


@bp.get("/storage/errors")
def storage_errors() -> dict[str, Any]:
    return {"errors": call("storage.errors", query_args(), text_args=True)}


@bp.get("/hnsw/trials")
def hnsw_trials() -> dict[str, Any]:
    return {"trials": call("hnsw.trials", query_args(), text_args=True)}

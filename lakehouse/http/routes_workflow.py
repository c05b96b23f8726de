"""Workflows: /v1/observer/workflow/run, /v1/observer/workflow/list, /v1/observer/workflow/runs/<run_id>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body

bp = Blueprint("workflow", __name__)


@bp.post("/v1/observer/workflow/run")
def run() -> Any:
    """`{workflow: <YAML> | <name>, input?: {...}, resume?: run_id, max_parallel?: n}` -> the run, once it is done:
    `{run_id, status, error, nodes: {id: {status, output, error, op_ids, ...}}, op_ids}`. A YAML that does not
    load is a 400 naming the node and field; a run whose nodes failed is a 200 with status `failed`."""
    return call("workflow.run", json_body())


@bp.get("/v1/observer/workflow/list")
def listing() -> dict[str, Any]:
    return {"workflows": call("workflow.list")}


@bp.get("/v1/observer/workflow/runs/<run_id>")
def get(run_id: str) -> Any:
    return call("workflow.get", run_id=run_id)

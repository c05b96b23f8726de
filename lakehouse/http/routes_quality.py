"""Data quality routes: validation rules (/v1/rules...) and truth rules (/v1/truth/check)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body, query_args

bp = Blueprint("quality", __name__)


@bp.post("/v1/rules")
def put_rules() -> tuple[Any, int]:
    """`{rules: [{dataset, name, kind, params, severity?}]}` -> 201 `{stored, rules}`."""
    return call("rules.put", json_body()), 201


@bp.get("/v1/rules")
def list_rules() -> dict[str, Any]:
    """`?dataset=` -> `{rules: [...]}`."""
    return {"rules": call("rules.list", query_args(), text_args=True)}


@bp.delete("/v1/rules/<dataset>/<name>")
def delete_rule(dataset: str, name: str) -> Any:
    return call("rules.delete", dataset=dataset, name=name)


@bp.post("/v1/rules/<dataset>/check")
def check_rules(dataset: str) -> Any:
    """`{sample?}` -> `{dataset, passed, failed, warnings, results: [{rule, kind, severity, passed, count, sample}]}`."""
    return call("rules.check", json_body(optional=True), dataset=dataset)


@bp.post("/v1/truth/check")
def truth_check() -> Any:
    """`{rules: "<TOML>", sample?}` -> `{ok, violations: [{rule, severity, count, sample, ...}], passed, errors}`."""
    return call("truth.check", json_body())

"""The lake's history and storage: /v1/journal, /v1/datasets/<dataset>/changes, /storage/drain."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body, query_args

bp = Blueprint("history", __name__)


@bp.get("/v1/journal")
def journal() -> dict[str, Any]:
    """`?dataset=&corpus=&op=&since_snapshot=&limit=` -> `{journal: [...]}`, newest snapshot first."""
    return {"journal": call("journal", query_args(), text_args=True)}


@bp.get("/v1/datasets/<dataset>/changes")
def changes(dataset: str) -> Any:
    """`?since_snapshot=&until_snapshot=&limit=` -> `{dataset, from_snapshot, to_snapshot, truncated, changes}`."""
    return call("dataset.changes", {**query_args(), "dataset": dataset}, text_args=True)


@bp.post("/storage/drain")
def drain() -> Any:
    """`{}` -> `{files, rows, remaining, moved: [{dataset, file, rows}]}`."""
    return call("storage.drain", json_body(optional=True))

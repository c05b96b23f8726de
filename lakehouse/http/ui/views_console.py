"""The staffing console: open job orders as cards with a fill-probability bar; a card expands into the workers
and candidates matrix search finds for it (playbook boosts marked), with buttons that record whether a match
worked (playbook.record), so the next search for a similar job order ranks differently."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from lakehouse.errors import NotFound
from lakehouse.http.ui.blueprint import attempt, bp, call, is_fragment, page
from lakehouse.http.ui.render import page_number

CARDS = 12
HISTORY = 5  # recorded outcomes shown under the matches


@bp.get("/console")
def console() -> Any:
    state = request.args.get("state", "").strip().upper() or None
    listing, error = attempt("staffing.job_orders", state=state, offset=(page_number() - 1) * CARDS, limit=CARDS)
    fill = _fill([j["id"] for j in listing["job_orders"]]) if listing else {}
    return page("console.html", listing=listing, fill=fill, state=state or "", error=error)


@bp.get("/console/jobs/<int:job_id>")
def job(job_id: int) -> Any:
    return _matches(job_id)


@bp.post("/console/jobs/<int:job_id>/outcome")
def outcome(job_id: int) -> Any:
    """`corpus`, `answer_id` and `outcome` (1: this match worked, -1: it did not) for this job order's query."""
    found = _job(job_id)
    entry = {"query": found["query"], "corpus": request.form.get("corpus", ""),
             "answer_id": request.form.get("answer_id", ""), "outcome": request.form.get("outcome", ""),
             "source": "ui:console"}
    recorded = call("playbook.record", entries=[entry])
    failure = recorded["results"][0].get("error")
    if not is_fragment() and failure is None:
        return redirect(url_for("ui.job", job_id=job_id), code=303)
    return _matches(job_id, recorded=entry if failure is None else None, record_error=failure)


def _job(job_id: int) -> dict[str, Any]:
    listing = call("staffing.job_orders", ids=[job_id], status=None, limit=1)
    if not listing["job_orders"]:
        raise NotFound(f"no job order {job_id}", code="job_order_not_found")
    return listing["job_orders"][0]


def _fill(ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    return {r["job_order_id"]: r for r in call("staffing.fill_probability", job_order_ids=ids)["results"]}


def _matches(job_id: int, **context: Any) -> Any:
    found = _job(job_id)
    result, error = attempt("matrix.search", found["search"]) if found["search"] else (None, None)
    history = call("playbook.lookup", query=found["query"], k=HISTORY)["results"]
    return page("job.html", "_matches.html", job=found, result=result, error=error, history=history,
                fill=_fill([job_id]), **context)

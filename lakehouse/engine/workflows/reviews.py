"""Asking reviewer models about chunks of code: several models at once (pr-audit: one verdict from several
lineages), or up an escalation ladder (scrum-review: a cheap model first, a stronger one when it is unsure).

The models are reached through `ask(model, messages) -> text` (the `chat` operation, from audit_ops): each
call runs in a copy of the caller's context, so it is recorded as the workflow node that asked.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lakehouse.engine.workflows.findings import batches, parse_review, review_messages, same_places
from lakehouse.errors import LakehouseError

Ask = Callable[[str, list[dict[str, str]]], str]
Context = Mapping[str, Sequence[Mapping[str, Any]]]


def _answers(ask: Ask, requests: list[tuple[str, list[dict[str, str]]]], files: list[str],
             max_workers: int) -> list[dict[str, Any]]:
    """Each (model, messages) asked at once: `{confidence, findings, dropped}` or `{error: {code, message}}`."""
    def one(model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        try:
            return parse_review(ask(model, messages), files)
        except LakehouseError as exc:  # a reviewer that fails is reported; the others still count
            return {"error": {"code": exc.code, "message": exc.message}}

    if not requests:
        return []
    with concurrent.futures.ThreadPoolExecutor(min(max_workers, len(requests)), thread_name_prefix="review") as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, model, messages) for model, messages in requests]
        return [f.result() for f in futures]


def review_in_parallel(ask: Ask, reviewers: Sequence[str], chunks: Sequence[Mapping[str, Any]], context: Context, *,
                       max_chars: int, max_workers: int = 8) -> list[dict[str, Any]]:
    """Every reviewer on every chunk (chunks batched into prompts of `max_chars`), all at once; per reviewer:
    `{reviewer, ok, error, confidence, findings, dropped}` (ok: every one of its prompts was answered)."""
    files = sorted({str(c["file"]) for c in chunks})
    tasks = [(model, review_messages(batch, context)) for model in reviewers for batch in batches(chunks, max_chars)]
    out = {m: _reviewer(m) for m in reviewers}
    for (model, _), answer in zip(tasks, _answers(ask, tasks, files, max_workers)):
        _add(out[model], answer)
    return list(out.values())


def _reviewer(model: str) -> dict[str, Any]:
    return {"reviewer": model, "ok": True, "error": None, "confidence": 10, "findings": [], "dropped": 0}


def _add(rec: dict[str, Any], answer: Mapping[str, Any]) -> None:
    """One answer into a reviewer's record: its findings, or its (first) error."""
    if "error" in answer:
        rec["ok"], rec["error"] = False, rec["error"] or answer["error"]
    else:
        rec["findings"] += answer["findings"]
        rec["dropped"] += answer["dropped"]
        rec["confidence"] = min(rec["confidence"], answer["confidence"])


def review_on_ladder(ask: Ask, ladder: Sequence[Sequence[str]], chunk: Mapping[str, Any], context: Context, *,
                     threshold: int) -> dict[str, Any]:
    """One chunk up the ladder: the models of a rung answer at once; the chunk goes one rung up while one of
    them fails, is less confident than `threshold` (1-10) or flags other places than another; the last rung
    settles it whatever they say (`settled`: false when it had to)."""
    messages = review_messages([chunk], context)
    steps = []
    for rung, models in enumerate(ladder):
        answers = list(zip(models, _answers(ask, [(m, messages) for m in models], [str(chunk["file"])], len(models))))
        ok = [(m, a) for m, a in answers if "error" not in a]
        why = None
        if len(ok) < len(models):
            why = "a reviewer failed: " + "; ".join(f"{m}: {a['error']['message']}" for m, a in answers if "error" in a)
        elif min(a["confidence"] for _, a in ok) < threshold:
            why = f"confidence {min(a['confidence'] for _, a in ok)} is below {threshold}"
        elif any(not same_places(ok[0][1]["findings"], a["findings"]) for _, a in ok[1:]):
            why = "the reviewers flagged different places"
        steps.append({"rung": rung, "models": list(models), "escalated": why})
        if why is None or rung == len(ladder) - 1:
            return {"chunk": chunk["id"], "file": chunk["file"], "rung": rung, "settled": why is None, "steps": steps,
                    "accepted": [{"reviewer": m, **a} for m, a in ok]}
    raise ValueError("the ladder has no rung")


def ladder_reviewers(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The accepted answers of every chunk, per reviewer, in the shape `review_in_parallel` gives (for a verdict)."""
    out: dict[str, dict[str, Any]] = {}
    for result in results:
        for answer in result["accepted"]:
            _add(out.setdefault(answer["reviewer"], _reviewer(answer["reviewer"])), answer)
    return list(out.values())

"""Chat and RAG routes: POST /v1/chat (one answer from any provider) and POST /rag (grounded answers)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from lakehouse.http.app import call, json_body

bp = Blueprint("chat", __name__)


@bp.post("/v1/chat")
def chat() -> Any:
    """`{model, messages | prompt, system?, temperature?, max_tokens?, timeout_s?}` -> `{model, provider, content,
    usage, latency_ms}`."""
    body = json_body()
    if body.get("stream"):  # this route answers in one piece; streaming is /v1/chat/completions
        body["stream"] = False
    return call("chat", body)


@bp.post("/rag")
def rag() -> Any:
    """`{question, corpora?, k?, model?, metadata_filter?, where?}` -> `{answer, citations, model, mode, ...}`."""
    return call("rag.ask", json_body())

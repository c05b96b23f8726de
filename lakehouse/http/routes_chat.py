"""Chat and RAG routes: POST /v1/chat (one answer from any provider) and POST /rag (grounded answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint

from lakehouse.errors import InvalidInput
from lakehouse.http.app import field, get_lake, json_body

bp = Blueprint("chat", __name__)


def chat_options(body: Mapping[str, Any]) -> dict[str, Any]:
    """model, messages and sampling options shared by /v1/chat and /v1/chat/completions."""
    messages = field(body, "messages", list)
    if messages is not None and not all(isinstance(m, dict) for m in messages):
        raise InvalidInput("field 'messages' must be an array of {role, content} objects", code="invalid_field",
                           field="messages")
    return {
        "model": field(body, "model", str, required=True),
        "messages": messages,
        "temperature": field(body, "temperature", (int, float)),
        "max_tokens": field(body, "max_tokens", int),
    }


@bp.post("/v1/chat")
def chat() -> dict[str, Any]:
    """`{model, messages | prompt, system?, temperature?, max_tokens?}` -> `{model, provider, content, usage,
    latency_ms}`."""
    body = json_body()
    options = chat_options(body)
    prompt, system = field(body, "prompt", str), field(body, "system", str)
    if options["messages"] is None and prompt is None:
        raise InvalidInput("give 'messages' (an array of {role, content}) or 'prompt' (a string)",
                           code="missing_field", field="messages")
    model = options.pop("model")
    return get_lake().chat.chat(model, prompt=prompt, system=system, **options).to_dict()


@bp.post("/rag")
def rag() -> dict[str, Any]:
    """`{question, corpora?, k?, model?, metadata_filter?, where?}` -> `{answer, citations, model, mode, ...}`."""
    body = json_body()
    corpora = field(body, "corpora", (str, list))
    if isinstance(corpora, list) and not all(isinstance(c, str) for c in corpora):
        raise InvalidInput("field 'corpora' must be a corpus name or an array of them", code="invalid_field",
                           field="corpora")
    k = field(body, "k", int)
    return get_lake().ask(
        field(body, "question", str, required=True), corpora=corpora, k=8 if k is None else k,
        model=field(body, "model", str), metadata_filter=field(body, "metadata_filter", dict),
        where=field(body, "where", str))

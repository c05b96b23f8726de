"""OpenAI-compatible gateway: POST /v1/chat/completions (SSE streaming included) and GET /v1/models.

The wire format is OpenAI's, so the official client works unchanged:

    OpenAI(base_url="http://127.0.0.1:3100/v1", api_key="unused").chat.completions.create(
        model="tier:local_fast", messages=[{"role": "user", "content": "hi"}], stream=True)

Errors keep Lakehouse's one JSON shape (`{"error": {code, message}}`), which the client reads too.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, stream_with_context

from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.http.app import call, json_body

log = logging.getLogger(__name__)

bp = Blueprint("openai", __name__)


@bp.post("/v1/chat/completions")
def completions() -> Any:
    """`{model, messages, temperature?, max_tokens? | max_completion_tokens?, stream?, stream_options?}`."""
    body = json_body()
    messages = body.get("messages")
    if messages is None:
        raise InvalidInput("missing field 'messages'", code="missing_field", field="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("field 'messages' must be a non-empty array of {role, content}", code="invalid_messages",
                           field="messages")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise InvalidInput("field 'stream_options' must be an object", code="invalid_stream_options",
                           field="stream_options")
    wanted = {"model": body.get("model"), "messages": [_message(m, i) for i, m in enumerate(messages)],
              "temperature": body.get("temperature"), "max_tokens": body.get("max_tokens",
                                                                             body.get("max_completion_tokens")),
              "stream": body.get("stream")}
    args = {k: v for k, v in wanted.items() if v is not None}  # absent, not null: the op's defaults apply
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not args.get("stream"):
        result = call("chat", args)
        return {
            "id": ident, "object": "chat.completion", "created": created, "model": result.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.content},
                         "finish_reason": "stop"}],
            "usage": _usage(result.usage),
        }
    # Connect before the response starts: a provider that cannot start answers with a JSON error.
    deltas = call("chat", args)
    return Response(stream_with_context(_events(deltas, ident, created, bool(stream_options.get("include_usage")))),
                    mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.get("/v1/models")
def models() -> dict[str, Any]:
    """Configured tiers ('tier:local_fast') and the model ids they name, as OpenAI model objects."""
    created = int(time.time())
    return {"object": "list",
            "data": [{"id": m["id"], "object": "model", "created": created, "owned_by": m["owned_by"]}
                     for m in call("chat.models")]}


def _events(deltas: Any, ident: str, created: int, include_usage: bool) -> Iterator[str]:
    """chat.completion.chunk events, then `data: [DONE]`; a mid-stream failure is an in-band error event
    (the status line is already sent), which the openai client raises as APIError."""

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": deltas.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    try:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        for text in deltas:
            yield _sse(chunk({"content": text}))
        yield _sse(chunk({}, "stop"))
        if include_usage:
            yield _sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": deltas.model,
                        "choices": [], "usage": _usage(deltas.usage)})
    except LakehouseError as exc:
        log.warning("chat stream from %s failed: %s", deltas.model, exc.message)
        yield _sse({"error": exc.to_dict()})
        return
    finally:
        deltas.close()  # a client that went away lands here too (GeneratorExit)
    yield "data: [DONE]\n\n"


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _usage(usage: Mapping[str, int]) -> dict[str, int]:
    p, c = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": int(usage.get("total_tokens", p + c))}


def _message(item: Any, i: int) -> dict[str, Any]:
    """OpenAI's message forms, reduced to {role, content}: content parts are joined as text, and the
    'developer' role (OpenAI's newer name for system) becomes 'system'."""
    if not isinstance(item, Mapping):
        raise InvalidInput(f"messages[{i}] must be an object {{role, content}}", code="invalid_messages",
                           field="messages")
    role, content = item.get("role"), item.get("content")
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput(f"messages[{i}].content: only text parts are supported", code="invalid_messages",
                               field="messages")
        content = "\n".join(texts)
    elif content is None and role == "assistant":
        content = ""  # an assistant turn that only called tools
    return {"role": "system" if role == "developer" else role, "content": content}

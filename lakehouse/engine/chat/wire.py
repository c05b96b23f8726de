"""The two wire formats: Ollama `/api/chat` (NDJSON stream) and OpenAI `/chat/completions` (SSE).

Tool calls: both take the request's `tools` in OpenAI's shape. They differ in the turns: OpenAI
sends and expects `tool_calls: [{id, type: "function", function: {name, arguments: "<json>"}}]`
and tool results `{role: "tool", tool_call_id, content}`; Ollama uses `function.arguments` as an
object, may leave out the id, and names the tool of a result in `tool_name`.

Also the one boundary where httpx exceptions become `ProviderError` (`provider_errors`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from lakehouse.errors import LakehouseError, ProviderError

MAX_MESSAGE = 300  # characters of an upstream error kept in our message


def endpoint(wire: str, base: str) -> str:
    return base.rstrip("/") + ("/api/chat" if wire == "ollama" else "/chat/completions")


def build_body(
    wire: str,
    provider: str,
    model: str,
    messages: list[dict[str, Any]],
    *,
    stream: bool,
    temperature: float | None,
    max_tokens: int | None,
    think: bool | None,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Request JSON. Options the caller did not set are left out, so provider defaults apply."""
    body: dict[str, Any] = {"model": model, "messages": wire_messages(wire, messages), "stream": stream}
    if tools:
        body["tools"] = tools
    if wire == "ollama":
        options: dict[str, Any] = {}
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if options:
            body["options"] = options
        # Local thinking models spend most of their budget thinking; off unless asked for.
        if think is not None:
            body["think"] = think
        elif provider == "ollama":
            body["think"] = False
    else:
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stream:
            body["stream_options"] = {"include_usage": True}  # else streams carry no usage
    return body


def wire_messages(wire: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """build_messages' tool turns (`tool_calls: [{id, name, arguments: dict}]`) in the wire's shape."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> tool name, for Ollama's `tool_name`
    for m in messages:
        if "tool_calls" in m:
            names.update((c["id"], c["name"]) for c in m["tool_calls"])
            if wire == "ollama":
                calls = [{"function": {"name": c["name"], "arguments": c["arguments"]}} for c in m["tool_calls"]]
            else:
                calls = [{"id": c["id"], "type": "function",
                          "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                         for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": m["content"], "tool_calls": calls})
        elif m["role"] == "tool" and wire == "ollama":
            out.append({"role": "tool", "content": m["content"], "tool_name": names.get(m["tool_call_id"], "")})
        else:
            out.append(m)
    return out


def parse_tool_calls(wire: str, provider: str, data: Any) -> list[dict[str, Any]]:
    """`[{id, name, arguments: dict}]` of a non-streamed answer; empty when the model asked for none.
    Ollama may send no ids: they are numbered, unique within the answer."""
    try:
        message = data["message"] if wire == "ollama" else data["choices"][0].get("message") or {}
        calls = message.get("tool_calls") or []
        out = []
        for i, call in enumerate(calls):
            fn = call["function"]
            arguments = fn.get("arguments") or {}
            if isinstance(arguments, str):
                arguments = json.loads(arguments)
            if not isinstance(arguments, dict) or not isinstance(fn["name"], str):
                raise TypeError("tool call arguments must be an object")
            out.append({"id": str(call.get("id") or f"call_{i}"), "name": fn["name"], "arguments": arguments})
        return out
    except ValueError as exc:
        raise ProviderError(f"{provider} sent tool call arguments that are not JSON", provider=provider) from exc
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError(f"{provider} sent a malformed tool call: {exc}", provider=provider) from exc


def _ollama_usage(data: dict[str, Any]) -> dict[str, int]:
    p, c = int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _openai_usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    p, c = int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": int(raw.get("total_tokens") or p + c)}


def parse_reply(wire: str, provider: str, data: Any) -> tuple[str, dict[str, int]]:
    """(content, usage) of a non-streamed answer."""
    try:
        if isinstance(data, dict) and data.get("error"):
            raise ProviderError(f"{provider}: {error_text(data)}", provider=provider)
        if wire == "ollama":
            return data["message"].get("content") or "", _ollama_usage(data)
        choice = data["choices"][0]
        return (choice.get("message") or {}).get("content") or "", _openai_usage(data.get("usage"))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError(f"{provider} sent an answer without a message", provider=provider) from exc


def iter_deltas(wire: str, provider: str, lines: Iterator[str]) -> Iterator[tuple[str, dict[str, int] | None]]:
    """(text delta, usage or None) pairs from a streamed answer's lines."""
    for line in lines:
        line = line.strip()
        if wire == "openai":
            if not line.startswith("data:"):
                continue  # blank separators, ': keep-alive' comments, 'event:' lines
            line = line[5:].strip()
            if line == "[DONE]":
                return
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ProviderError(f"{provider} sent a malformed stream line", provider=provider) from exc
        if not isinstance(data, dict):
            continue
        if data.get("error"):
            raise ProviderError(f"{provider}: {error_text(data)}", provider=provider)
        if wire == "ollama":
            text = (data.get("message") or {}).get("content") or ""
            usage = _ollama_usage(data) if data.get("done") else None
            yield text, usage
            if data.get("done"):
                return
        else:
            choices = data.get("choices") or [{}]
            text = ((choices[0] or {}).get("delta") or {}).get("content") or ""
            raw_usage = data.get("usage") or (choices[0] or {}).get("usage")  # Moonshot: in the choice
            yield text, _openai_usage(raw_usage) if raw_usage else None


def error_text(data: Any) -> str:
    """The human part of an upstream error body, trimmed: {"error": "..."} or {"error": {"message"}}."""
    msg: Any = data
    if isinstance(data, dict):
        msg = data.get("error") or data.get("message") or data.get("detail") or data
        if isinstance(msg, dict):
            msg = msg.get("message") or msg.get("error") or json.dumps(msg)
    return trim(str(msg))


def error_from_body(body: bytes) -> str:
    try:
        return error_text(json.loads(body))
    except ValueError:
        return trim(body.decode("utf-8", "replace")) or "(empty body)"


def trim(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


@contextlib.contextmanager
def provider_errors(
    provider: str, url: str, timeout_s: float, scrub: Callable[[str], str], *, model: str | None = None
) -> Iterator[None]:
    """The one boundary: httpx / decoding failures -> ProviderError (timeouts: code provider_timeout).

    `model`, when given, is recorded on the error (embedders name theirs; chat leaves it out)."""
    details: dict[str, Any] = {"provider": provider} if model is None else {"provider": provider, "model": model}
    try:
        yield
    except LakehouseError:
        raise
    except httpx.TimeoutException as exc:
        raise ProviderError(
            f"{provider} did not answer within {timeout_s:g} s ({type(exc).__name__})",
            code="provider_timeout", **details,
        ) from exc
    except httpx.ConnectError as exc:
        raise ProviderError(
            f"cannot connect to {provider} at {url}: {scrub(trim(str(exc)))}", **details
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"{provider} request failed: {type(exc).__name__}: {scrub(trim(str(exc)))}", **details
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderError(f"{provider} sent an answer that is not JSON", **details) from exc

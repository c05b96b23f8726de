"""Value types of the chat dispatcher: messages, results and the retry policy."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lakehouse.errors import InvalidInput, SettingsError

ROLES = frozenset({"system", "user", "assistant", "tool"})
# OpenAI's rule for function names; Ollama accepts the same.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclasses.dataclass
class ChatMessage:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclasses.dataclass
class ChatResult:
    """One answer. `model` is the routable id that answered (after tiers and fallbacks).

    `tool_calls` is empty unless the call offered `tools=` and the model asked for some: then each
    is `{"id", "name", "arguments": dict}`; answer with `{"role": "tool", "tool_call_id", "content"}`
    messages after the assistant turn `{"role": "assistant", "content", "tool_calls": [...]}`."""

    model: str
    provider: str
    content: str
    usage: dict[str, int]
    latency_ms: float
    attempts: int = 1  # HTTP requests made, retries and fallbacks included
    fallback_from: list[str] = dataclasses.field(default_factory=list)  # models that failed before this one
    tool_calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not self.tool_calls:  # the answer's shape is unchanged for callers that offer no tools
            del out["tool_calls"]
        return out


@dataclasses.dataclass(frozen=True)
class ChatPolicy:
    """How hard the dispatcher tries. Override per lake with a `[models.policy]` TOML table.

    timeout_s: per HTTP attempt (a call's `timeout_s=` overrides it).
    retries: extra attempts on 429 / 5xx, with `backoff_s * 2**n` (capped at `backoff_max_s`)
    or the upstream `Retry-After` (capped at `retry_after_cap_s`) between them.
    cooldown_failures / cooldown_s: after that many consecutive failed calls to a provider,
    skip it for `cooldown_s` seconds (fail fast, or go straight to the tier's fallback).
    """

    timeout_s: float = 120.0
    retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_cap_s: float = 30.0
    cooldown_failures: int = 3
    cooldown_s: float = 30.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], origin: str = "[models.policy]") -> ChatPolicy:
        """Build from a TOML table; unknown keys or non-numbers are a SettingsError."""
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{origin} must be a table, got {type(raw).__name__}")
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                raise SettingsError(f"unknown key {key!r} in {origin}; known: {', '.join(fields)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SettingsError(f"{origin}.{key} must be a non-negative number, got {value!r}")
            values[key] = int(value) if fields[key] == "int" else float(value)
        return cls(**values)


def build_messages(
    messages: Sequence[ChatMessage | Mapping[str, Any]] | None,
    prompt: str | None,
    system: str | None,
) -> list[dict[str, Any]]:
    """Normalise the caller's input to wire messages: [system] + messages + [prompt as user].

    Tool turns are kept: an assistant message may carry `tool_calls` (then its content may be
    empty or None), a tool message carries the `tool_call_id` it answers. wire.py turns them into
    each provider's shape."""
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _text(system, "system")})
    if isinstance(messages, (str, bytes)):
        raise InvalidInput("messages must be a list of {role, content}; use prompt= for a string", code="invalid_messages")
    for i, item in enumerate(messages or ()):
        if isinstance(item, ChatMessage):
            out.append({"role": item.role, "content": _text(item.content, f"messages[{i}].content")})
        elif isinstance(item, Mapping):
            out.append(_message(item, f"messages[{i}]"))
        else:
            raise InvalidInput(f"messages[{i}] must be a ChatMessage or a dict, got {type(item).__name__}",
                               code="invalid_messages")
    if prompt is not None:
        out.append({"role": "user", "content": _text(prompt, "prompt")})
    if not any(m["role"] != "system" for m in out):
        raise InvalidInput("nothing to send: give messages= or prompt=", code="invalid_messages")
    return out


def _message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise InvalidInput(f"{where}.role must be one of {', '.join(sorted(ROLES))}, got {role!r}",
                           code="invalid_messages")
    if role == "assistant" and item.get("tool_calls"):
        calls = item["tool_calls"]
        if not isinstance(calls, Sequence) or isinstance(calls, (str, bytes)):
            raise InvalidInput(f"{where}.tool_calls must be a list", code="invalid_messages")
        return {"role": role, "content": "" if content is None else _text(content, f"{where}.content"),
                "tool_calls": [_tool_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]}
    out = {"role": role, "content": _text(content, f"{where}.content")}
    if role == "tool":
        call_id = item.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidInput(f"{where}.tool_call_id must name the tool call it answers", code="invalid_messages")
        out["tool_call_id"] = call_id
    return out


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    """`{id, name, arguments: dict}` (ChatResult's form) or OpenAI's `{id, type, function: {name, arguments}}`
    with `arguments` a JSON string or an object; both become the first."""
    if not isinstance(call, Mapping):
        raise InvalidInput(f"{where} must be an object", code="invalid_messages")
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
    call_id, name, arguments = call.get("id"), fn.get("name"), fn.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise InvalidInput(f"{where}.arguments is not JSON", code="invalid_messages") from exc
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not isinstance(arguments, Mapping):
        raise InvalidInput(f"{where} needs a string id, a string name and object arguments", code="invalid_messages")
    return {"id": call_id, "name": name, "arguments": dict(arguments)}


def check_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """OpenAI-style `[{type: "function", function: {name, description?, parameters?}}]`, checked before
    a round trip; None or empty means no tools."""
    if not tools:
        return None
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise InvalidInput("tools must be a list of {type: 'function', function: {...}}", code="invalid_tools")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, Mapping) and tool.get("type") == "function" else None
        if not isinstance(fn, Mapping):
            raise InvalidInput(f"tools[{i}] must be {{type: 'function', function: {{name, ...}}}}", code="invalid_tools")
        name, params = fn.get("name"), fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise InvalidInput(f"tools[{i}].function.name must match [A-Za-z0-9_-]{{1,64}}, got {name!r}",
                               code="invalid_tools")
        if not isinstance(params, Mapping) or not isinstance(fn.get("description", ""), str):
            raise InvalidInput(f"tools[{i}].function: parameters must be a JSON schema object and description a string",
                               code="invalid_tools")
        out.append({"type": "function",
                    "function": {"name": name, "description": fn.get("description", ""), "parameters": dict(params)}})
    return out


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}", code="invalid_messages")
    return value


def check_options(temperature: float | None, max_tokens: int | None, timeout_s: float | None) -> None:
    """Reject nonsense before it costs a round trip."""
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature) or not 0 <= temperature <= 2
    ):
        raise InvalidInput(f"temperature must be a number in [0, 2], got {temperature!r}", code="invalid_temperature")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InvalidInput(f"max_tokens must be a positive integer, got {max_tokens!r}", code="invalid_max_tokens")
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0
    ):
        raise InvalidInput(f"timeout_s must be a positive number, got {timeout_s!r}", code="invalid_timeout")

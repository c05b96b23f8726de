"""Value types of the chat dispatcher: messages, results and the retry policy."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lakehouse.errors import InvalidInput, SettingsError

ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclasses.dataclass
class ChatMessage:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclasses.dataclass
class ChatResult:
    """One answer. `model` is the routable id that answered (after tiers and fallbacks)."""

    model: str
    provider: str
    content: str
    usage: dict[str, int]
    latency_ms: float
    attempts: int = 1  # HTTP requests made, retries and fallbacks included
    fallback_from: list[str] = dataclasses.field(default_factory=list)  # models that failed before this one

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
) -> list[dict[str, str]]:
    """Normalise the caller's input to wire messages: [system] + messages + [prompt as user]."""
    out: list[dict[str, str]] = []
    if system is not None:
        out.append({"role": "system", "content": _text(system, "system")})
    if isinstance(messages, (str, bytes)):
        raise InvalidInput("messages must be a list of {role, content}; use prompt= for a string", code="invalid_messages")
    for i, item in enumerate(messages or ()):
        if isinstance(item, ChatMessage):
            role, content = item.role, item.content
        elif isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
        else:
            raise InvalidInput(f"messages[{i}] must be a ChatMessage or a dict, got {type(item).__name__}",
                               code="invalid_messages")
        if role not in ROLES:
            raise InvalidInput(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}, got {role!r}",
                               code="invalid_messages")
        out.append({"role": role, "content": _text(content, f"messages[{i}].content")})
    if prompt is not None:
        out.append({"role": "user", "content": _text(prompt, "prompt")})
    if not any(m["role"] != "system" for m in out):
        raise InvalidInput("nothing to send: give messages= or prompt=", code="invalid_messages")
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

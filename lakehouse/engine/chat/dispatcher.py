"""`ChatDispatcher`: resolve a model name, call its provider with retries, fall back, record."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from lakehouse.engine.chat.keys import KeyRing
from lakehouse.engine.chat.routing import PROVIDERS, ModelTable, ProviderSpec, canonical, parse_model
from lakehouse.engine.chat.stream import ChatStream
from lakehouse.engine.chat.types import ChatMessage, ChatPolicy, ChatResult, build_messages, check_options, check_tools
from lakehouse.engine.chat.wire import (
    build_body,
    endpoint,
    error_from_body,
    parse_reply,
    parse_tool_calls,
    provider_errors,
)
from lakehouse.errors import LakehouseError, ProviderError, ProviderNotConfigured
from lakehouse.settings import Settings

log = logging.getLogger(__name__)

Messages = Sequence[ChatMessage | Mapping[str, Any]] | None


@dataclasses.dataclass(frozen=True)
class _Target:
    spec: ProviderSpec
    upstream: str
    base: str

    @property
    def provider(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        return canonical(self.spec.name, self.upstream)

    @property
    def url(self) -> str:
        return endpoint(self.spec.wire, self.base)


@dataclasses.dataclass
class _Health:
    failures: int = 0  # consecutive failed calls (429 / 5xx / transport), reset by a success
    until: float = 0.0  # monotonic time the cooldown ends


@dataclasses.dataclass
class _CallLog:
    requested: str
    t0: float
    attempts: int = 0
    failed: list[tuple[_Target, LakehouseError]] = dataclasses.field(default_factory=list)


class ChatDispatcher:
    """One object per lake; thread-safe. See the package docstring for names and tiers."""

    def __init__(
        self,
        settings: Settings,
        *,
        keys: KeyRing | None = None,
        client: httpx.Client | None = None,
        env: Mapping[str, str] | None = None,
        policy: ChatPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        models: ModelTable | None = None,
    ) -> None:
        self.settings = settings
        self.table = models if models is not None else ModelTable(getattr(settings, "models", None))
        self.policy = policy or ChatPolicy.from_mapping(self.table.policy)
        key_names = [p.key_env for p in PROVIDERS.values() if p.key_env]
        self._keys = keys if keys is not None else KeyRing(key_names, os.environ if env is None else env,
                                                           getattr(settings, "key_file", ""))
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=self.policy.timeout_s, headers={"User-Agent": "lakehouse"})
        self._sleep = sleep
        self._health: dict[str, _Health] = {}
        self._lock = threading.Lock()

    # -- public API ---------------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Messages = None,
        *,
        prompt: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        think: bool | None = None,
        timeout_s: float | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ChatResult:
        """One complete answer, from `model` or, if it fails after retries, its fallbacks.

        `tools` (OpenAI's `[{type: "function", function: {name, description, parameters}}]`) lets the
        model ask for calls instead of answering: they come back in `ChatResult.tool_calls`."""
        def answer(t: _Target, resp: httpx.Response, call: _CallLog, timeout: float) -> ChatResult:
            with provider_errors(t.provider, t.url, timeout, self._keys.scrub):
                data = resp.json()
            content, usage = parse_reply(t.spec.wire, t.provider, data)
            tool_calls = parse_tool_calls(t.spec.wire, t.provider, data)
            latency = (time.perf_counter() - call.t0) * 1000
            log.info("chat %s via %s: %.0f ms, %d tokens", t.model, t.provider, latency, usage["total_tokens"])
            return ChatResult(t.model, t.provider, content, usage, round(latency, 3), call.attempts,
                              [f.model for f, _ in call.failed if f is not t], tool_calls)

        return self._first_answer(model, build_messages(messages, prompt, system), temperature, max_tokens, think,
                                  timeout_s, stream=False, finish=answer, tools=check_tools(tools))

    def stream(
        self,
        model: str,
        messages: Messages = None,
        *,
        prompt: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        think: bool | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[str]:
        """Text deltas. Connects (with retries and fallbacks) before returning, so a failure to
        start raises here; a failure mid-stream raises ProviderError from the iterator."""
        return self._first_answer(model, build_messages(messages, prompt, system), temperature, max_tokens, think,
                                  timeout_s, stream=True,
                                  finish=lambda t, resp, call, timeout: ChatStream(
                                      t.model, t.provider, t.spec.wire, resp,
                                      lambda: provider_errors(t.provider, t.url, timeout, self._keys.scrub)))

    def _first_answer(self, model: str, msgs: list[dict[str, Any]], temperature: float | None, max_tokens: int | None,
                      think: bool | None, timeout_s: float | None, *, stream: bool,
                      finish: Callable[[_Target, httpx.Response, _CallLog, float], Any],
                      tools: list[dict[str, Any]] | None = None) -> Any:
        """`finish(target, response, ...)` for the first target (the model, then its fallbacks) that answers."""
        check_options(temperature, max_tokens, timeout_s)
        targets = self._targets(model)
        timeout = float(timeout_s or self.policy.timeout_s)
        call = _CallLog(model, time.perf_counter())
        for t in targets:
            body = build_body(t.spec.wire, t.provider, t.upstream, msgs, stream=stream,
                              temperature=temperature, max_tokens=max_tokens, think=think, tools=tools)
            try:
                return finish(t, self._open(t, body, timeout, stream=stream, call=call), call, timeout)
            except (ProviderError, ProviderNotConfigured) as exc:
                self._note_failure(call, t, exc)
        raise self._give_up(call, targets)

    def resolve(self, model: str) -> tuple[str, str, str]:
        """(provider, upstream model id, base URL) after tier resolution."""
        t = self._target(self.table.resolve_tier(model))
        return t.provider, t.upstream, t.base

    def providers(self) -> list[dict[str, Any]]:
        """Every known provider and whether it can be called; never the key itself."""
        return [
            {"name": p.name, "base": self._base(p), "wire": p.wire, "key_env": p.key_env,
             "configured": p.key_env is None or self._keys.get(p.key_env) is not None}
            for p in PROVIDERS.values()
        ]

    def models(self) -> list[str]:
        """Tier names ('tier:local_fast') and the ids they resolve to, in configuration order."""
        return self.table.listing()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> ChatDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing ------------------------------------------------------------------------------

    def _base(self, spec: ProviderSpec) -> str:
        return str(getattr(self.settings, spec.base_setting))

    def _target(self, model_id: str) -> _Target:
        provider, upstream = parse_model(model_id)
        spec = PROVIDERS[provider]
        return _Target(spec, upstream, self._base(spec))

    def _targets(self, model: str) -> list[_Target]:
        return [self._target(m) for m in self.table.candidates(model)]

    def _headers(self, t: _Target) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        env_name = t.spec.key_env
        if env_name is None:
            return headers
        key = self._keys.require(env_name, t.provider)
        headers["Authorization"] = f"Bearer {key}"
        return headers

    # -- one provider, with retries -----------------------------------------------------------

    def _open(
        self, t: _Target, body: dict[str, Any], timeout: float, *, stream: bool, call: _CallLog
    ) -> httpx.Response:
        """A response with a 2xx status (body unread when `stream`); ProviderError otherwise."""
        headers = self._headers(t)
        self._check_cooldown(t)
        retries = int(self.policy.retries)
        for attempt in range(retries + 1):
            call.attempts += 1
            try:
                with provider_errors(t.provider, t.url, timeout, self._keys.scrub):
                    request = self._client.build_request("POST", t.url, json=body, headers=headers,
                                                         timeout=httpx.Timeout(timeout))
                    resp = self._client.send(request, stream=stream)
                    if resp.status_code < 400:
                        self._set_health(t.provider, ok=True)
                        return resp
                    try:
                        detail = resp.read()
                    finally:
                        resp.close()
            except ProviderError:
                self._set_health(t.provider, ok=False)
                raise
            status = resp.status_code
            retryable = status == 429 or status >= 500
            message = self._keys.scrub(error_from_body(detail))
            if retryable and attempt < retries:
                delay = self._retry_delay(resp, attempt)
                log.warning("%s returned HTTP %d for %s; retry %d/%d in %.2f s",
                            t.provider, status, t.model, attempt + 1, retries, delay)
                self._sleep(delay)
                continue
            if retryable:
                self._set_health(t.provider, ok=False)
            raise ProviderError(f"{t.provider} returned HTTP {status} for {t.upstream}: {message}",
                                provider=t.provider, status=status, model=t.model)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _retry_delay(self, resp: httpx.Response, attempt: int) -> float:
        """Retry-After (seconds, fractional allowed, or an HTTP date), capped; else backoff."""
        cap = self.policy.retry_after_cap_s
        raw = resp.headers.get("retry-after", "").strip()
        if raw:
            try:
                return min(max(float(raw), 0.0), cap)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(raw)
                    return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), cap)
                except (TypeError, ValueError):
                    pass  # unparseable: fall through to our own backoff
        return min(self.policy.backoff_s * 2**attempt, self.policy.backoff_max_s)

    # -- cooldown -----------------------------------------------------------------------------

    def _check_cooldown(self, t: _Target) -> None:
        with self._lock:
            h = self._health.get(t.provider)
            left = h.until - time.monotonic() if h else 0.0
        if left > 0:
            raise ProviderError(
                f"{t.provider} is cooling down after {h.failures if h else 0} consecutive failures; "
                f"skipped for another {left:.1f} s",
                code="provider_cooldown", provider=t.provider,
            )

    def _set_health(self, provider: str, *, ok: bool) -> None:
        with self._lock:
            h = self._health.setdefault(provider, _Health())
            if ok:
                h.failures, h.until = 0, 0.0
                return
            h.failures += 1
            # Count is not reset when tripping: after the cooldown one more failure re-trips.
            if self.policy.cooldown_failures and h.failures >= self.policy.cooldown_failures:
                h.until = time.monotonic() + self.policy.cooldown_s
                log.warning("%s failed %d times in a row; skipping it for %.1f s",
                            provider, h.failures, self.policy.cooldown_s)

    # -- outcome --------------------------------------------------------------------------------

    def _note_failure(self, call: _CallLog, t: _Target, exc: LakehouseError) -> None:
        call.failed.append((t, exc))
        log.warning("chat %s failed: %s", t.model, exc.message)

    def _give_up(self, call: _CallLog, targets: list[_Target]) -> LakehouseError:
        """The error to raise once every candidate failed (the only one's, or a summary)."""
        errors = [e for _, e in call.failed]
        if len(errors) == 1 or all(isinstance(e, ProviderNotConfigured) for e in errors):
            exc = errors[0]
        else:
            last = errors[-1]
            summary = "; ".join(f"{t.model}: {e.message}" for t, e in call.failed)
            exc = ProviderError(f"every model for {call.requested} failed: {summary}",
                                code=last.code if isinstance(last, ProviderError) else None,
                                provider=last.details.get("provider"), status=last.details.get("status"))
            exc.__cause__ = last
        return exc

"""Chat dispatcher against real loopback servers: wire formats, retries, fallbacks, cooldown."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_servers import LLMServer, provider_settings

import lakehouse
from lakehouse.engine.chat import ChatDispatcher, ChatPolicy
from lakehouse.errors import ProviderError, ProviderNotConfigured
from lakehouse.settings import Settings

KEYS = {
    "OLLAMA_CLOUD_KEY": "sk-cloud-SECRET-1111",
    "OPENROUTER_API_KEY": "sk-or-SECRET-2222",
    "OPENCODE_API_KEY": "sk-oc-SECRET-3333",
    "KIMI_API_KEY": "sk-kimi-SECRET-4444",
}
FAST = ChatPolicy(timeout_s=5.0, retries=2, backoff_s=0.01, backoff_max_s=0.05, retry_after_cap_s=1.0,
                  cooldown_failures=3, cooldown_s=0.5)


@pytest.fixture
def srv() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


def make(srv: LLMServer, *, env: dict[str, str] | None = None,
         policy: ChatPolicy = FAST, models: dict[str, Any] | None = None, sleep: Any = time.sleep,
         **overrides: Any) -> ChatDispatcher:
    settings = Settings.load(env={}, **{**provider_settings(srv.url), "models": models or {}, **overrides})
    return ChatDispatcher(settings, env=KEYS if env is None else env, policy=policy, sleep=sleep)


ROUTES = [
    ("ollama/qwen3:4b", "/api/chat", "qwen3:4b", None),
    ("qwen3:4b", "/api/chat", "qwen3:4b", None),
    ("ollama_cloud/gpt-oss:120b", "/cloud/api/chat", "gpt-oss:120b", "OLLAMA_CLOUD_KEY"),
    ("gpt-oss:120b:cloud", "/cloud/api/chat", "gpt-oss:120b", "OLLAMA_CLOUD_KEY"),
    ("openrouter/meta/llama-3", "/openrouter/api/v1/chat/completions", "meta/llama-3", "OPENROUTER_API_KEY"),
    ("opencode/qwen3-coder", "/opencode/zen/v1/chat/completions", "qwen3-coder", "OPENCODE_API_KEY"),
    ("kimi/kimi-for-coding", "/kimi/coding/v1/chat/completions", "kimi-for-coding", "KIMI_API_KEY"),
]


@pytest.mark.parametrize(("model", "path", "upstream", "key_env"), ROUTES)
def test_each_provider_gets_its_path_model_and_auth(srv: LLMServer, model: str, path: str,
                                                    upstream: str, key_env: str | None) -> None:
    with make(srv) as chat:
        result = chat.chat(model, prompt="hello there")
    req = srv.requests[-1]
    assert req.path == path and req.body["model"] == upstream
    if key_env is None:
        assert "authorization" not in req.headers
    else:
        assert req.headers["authorization"] == f"Bearer {KEYS[key_env]}"
    assert result.content == "echo: hello there"
    assert result.provider == chat.resolve(model)[0]
    assert result.model.endswith(upstream) and result.latency_ms > 0
    assert result.usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_options_are_sent_only_when_set(srv: LLMServer) -> None:
    with make(srv) as chat:
        chat.chat("ollama/m", prompt="a")
        chat.chat("ollama/m", prompt="a", temperature=0.2, max_tokens=50)
        chat.chat("openrouter/v/m", prompt="a")
        chat.chat("openrouter/v/m", prompt="a", temperature=0, max_tokens=7, think=True)
        chat.chat("ollama/m", prompt="a", think=True)
        chat.chat("m:cloud", prompt="a")
    plain, tuned, oa_plain, oa_tuned, thinking, cloud = srv.bodies()
    assert plain == {"model": "m", "messages": [{"role": "user", "content": "a"}], "stream": False, "think": False}
    assert tuned["options"] == {"temperature": 0.2, "num_predict": 50} and tuned["think"] is False
    assert "temperature" not in oa_plain and "max_tokens" not in oa_plain and "think" not in oa_plain
    assert oa_tuned["temperature"] == 0 and oa_tuned["max_tokens"] == 7 and "think" not in oa_tuned
    assert thinking["think"] is True
    assert "think" not in cloud and "options" not in cloud  # think:false is for local Ollama only


def test_reply_is_built_from_the_prompt(srv: LLMServer) -> None:
    prompt = "Context:\n[1] Alice runs the forklift.\n[2] Bob is in Illinois.\n\nQuestion: who?"
    with make(srv) as chat:
        result = chat.chat("ollama/m", prompt=prompt, system="Answer from the context.")
    assert "[1] Alice runs the forklift." in result.content and "[2] Bob is in Illinois." in result.content
    assert srv.bodies()[-1]["messages"][0] == {"role": "system", "content": "Answer from the context."}


def test_tier_is_sent_as_its_configured_model(srv: LLMServer) -> None:
    with make(srv, models={"local_judge": "ollama/judge:8b"}) as chat:
        assert chat.chat("tier:local_judge", prompt="x").model == "ollama/judge:8b"
    assert srv.bodies()[-1]["model"] == "judge:8b"


# -- retries -----------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(srv: LLMServer) -> None:
    srv.fail(429, headers={"Retry-After": "0.2"})
    slept: list[float] = []
    with make(srv, sleep=slept.append) as chat:
        result = chat.chat("openrouter/v/m", prompt="x")
    assert result.content == "echo: x" and len(srv.requests) == 2
    assert slept == [0.2]  # the server's wait, not the policy's backoff


def test_retry_after_is_capped_and_backoff_is_exponential(srv: LLMServer) -> None:
    slept: list[float] = []
    srv.fail(429, headers={"Retry-After": "3600"})
    srv.fail(503, {"error": "overloaded"})
    policy = ChatPolicy(retries=3, backoff_s=0.01, backoff_max_s=1.0, retry_after_cap_s=0.05)
    settings = Settings.load(env={}, **provider_settings(srv.url))
    with ChatDispatcher(settings, env={}, policy=policy, sleep=slept.append) as chat:
        chat.chat("ollama/m", prompt="x")
    assert slept == [0.05, 0.02]  # capped Retry-After, then backoff_s * 2**1


def test_retries_exhausted_maps_to_provider_error(srv: LLMServer) -> None:
    srv.fail(503, {"error": {"message": "upstream overloaded\n\n  please wait"}}, times=3)
    with make(srv) as chat, pytest.raises(ProviderError) as info:
        chat.chat("kimi/k2", prompt="x")
    exc = info.value
    assert exc.status == 502 and exc.code == "provider_error"
    assert exc.details["status"] == 503 and exc.details["provider"] == "kimi"
    assert "upstream overloaded please wait" in str(exc) and len(srv.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(srv: LLMServer, status: int) -> None:
    srv.fail(status, {"error": "model 'nope' not found " + "x" * 1000})
    with make(srv) as chat, pytest.raises(ProviderError) as info:
        chat.chat("ollama/nope", prompt="x")
    assert len(srv.requests) == 1 and info.value.details["status"] == status
    assert "model 'nope' not found" in str(info.value) and len(str(info.value)) < 400


def test_non_json_error_body_is_trimmed_text(srv: LLMServer) -> None:
    srv.fail(500, "<html><body>Bad   gateway</body></html>", times=3)
    with make(srv) as chat, pytest.raises(ProviderError, match="Bad gateway"):
        chat.chat("opencode/m", prompt="x")


# -- fallbacks and cooldown --------------------------------------------------------------------


def test_fallback_to_next_model_after_retries(srv: LLMServer) -> None:
    models = {"local_fast": "openrouter/v/big", "fallbacks": {"local_fast": ["ollama/llama3.2:3b"]}}
    srv.fail(503, times=3)
    with make(srv, models=models) as chat:
        result = chat.chat("tier:local_fast", prompt="x")
    assert result.model == "ollama/llama3.2:3b" and result.provider == "ollama"
    assert [r.path for r in srv.requests].count("/openrouter/api/v1/chat/completions") == 3
    assert result.fallback_from == ["openrouter/v/big"] and result.attempts == 4


def test_fallback_when_provider_not_configured(srv: LLMServer) -> None:
    models = {"cloud_judge": "kimi/k2", "fallbacks": {"cloud_judge": ["tier:local"]}, "local": "ollama/m"}
    with make(srv, env={}, models=models) as chat:
        assert chat.chat("tier:cloud_judge", prompt="x").model == "ollama/m"
        with pytest.raises(ProviderNotConfigured):
            chat.chat("kimi/k2", prompt="x")


def test_every_candidate_failing_is_summarised(srv: LLMServer) -> None:
    models = {"fallbacks": {"ollama/a": ["ollama/b"]}}
    srv.fail(404, {"error": "model a not found"})
    srv.fail(404, {"error": "model b not found"})
    with make(srv, models=models) as chat, pytest.raises(ProviderError) as info:
        chat.chat("ollama/a", prompt="x")
    assert "ollama/a: " in str(info.value) and "model b not found" in str(info.value)


def test_cooldown_skips_a_failing_provider(srv: LLMServer) -> None:
    policy = ChatPolicy(retries=0, cooldown_failures=2, cooldown_s=0.4)
    srv.fail(502, times=2)
    slept: list[float] = []
    with make(srv, policy=policy, models={"fallbacks": {"openrouter/v/m": ["ollama/m"]}}, sleep=slept.append) as chat:
        for _ in range(2):
            with pytest.raises(ProviderError):
                chat.chat("opencode/m", prompt="x")
        n = len(srv.requests)
        with pytest.raises(ProviderError) as info:
            chat.chat("opencode/m", prompt="x")
        assert info.value.code == "provider_cooldown" and len(srv.requests) == n  # no network round trip
        assert slept == []  # and no waiting
        # Other providers are not affected.
        assert chat.chat("openrouter/v/m", prompt="x").provider == "openrouter"
        time.sleep(0.45)
        assert chat.chat("opencode/m", prompt="x").content == "echo: x"


def test_cooldown_goes_straight_to_the_fallback(srv: LLMServer) -> None:
    policy = ChatPolicy(retries=0, cooldown_failures=1, cooldown_s=30)
    srv.fail(500)
    with make(srv, policy=policy, models={"fallbacks": {"kimi/k": ["ollama/m"]}}) as chat:
        assert chat.chat("kimi/k", prompt="x").model == "ollama/m"
        before = len(srv.requests)
        assert chat.chat("kimi/k", prompt="x").model == "ollama/m"
    assert len(srv.requests) == before + 1 and srv.requests[-1].path == "/api/chat"


# -- transport failures ------------------------------------------------------------------------


def test_timeout_is_a_provider_error(srv: LLMServer) -> None:
    srv.delay_s = 1.5  # without the timeout the call would succeed after this
    with make(srv) as chat, pytest.raises(ProviderError) as info:
        chat.chat("ollama/m", prompt="x", timeout_s=0.15)
    assert info.value.code == "provider_timeout" and "0.15 s" in str(info.value)


def test_policy_timeout_applies_by_default(srv: LLMServer) -> None:
    srv.delay_s = 0.6
    with make(srv, policy=ChatPolicy(timeout_s=0.15)) as chat, pytest.raises(ProviderError) as info:
        chat.chat("openrouter/v/m", prompt="x")
    assert info.value.code == "provider_timeout"


def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings.load(env={}, ollama_base=f"http://127.0.0.1:{port}", key_file="")
    with ChatDispatcher(settings, env={}, policy=FAST) as chat, pytest.raises(ProviderError) as info:
        chat.chat("ollama/m", prompt="x")
    assert "cannot connect to ollama" in str(info.value) and info.value.__cause__ is not None


def test_retry_after_http_date_is_understood(srv: LLMServer) -> None:
    slept: list[float] = []
    srv.fail(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # in the past: no wait
    settings = Settings.load(env={}, **provider_settings(srv.url))
    with ChatDispatcher(settings, env={}, policy=FAST, sleep=slept.append) as chat:
        chat.chat("ollama/m", prompt="x")
    assert slept == [0.0]


def test_injected_client_is_used_and_not_closed(srv: LLMServer) -> None:
    with httpx.Client(trust_env=False) as client:
        settings = Settings.load(env={}, **provider_settings(srv.url))
        ChatDispatcher(settings, env={}, client=client).close()
        assert ChatDispatcher(settings, env={}, client=client).chat("m", prompt="x").content == "echo: x"


# -- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["ollama/m", "m:cloud", "openrouter/v/m", "kimi/k"])
def test_streaming_both_wire_formats(srv: LLMServer, model: str) -> None:
    finished: list[Any] = []
    with make(srv) as chat:
        stream = chat.stream(model, prompt="one two three four", temperature=0.5)
        stream.on_finish = finished.append
        deltas = list(stream)
    assert len(deltas) >= 4 and "".join(deltas) == "echo: one two three four"
    body = srv.bodies()[-1]
    assert body["stream"] is True
    assert finished == [None] and not stream.cancelled
    assert stream.usage["completion_tokens"] == 5 and stream.usage["prompt_tokens"] == 4


def test_stream_failure_mid_way_raises_provider_error(srv: LLMServer) -> None:
    srv.stream_error = "model crashed"
    with make(srv) as chat:
        for model in ("ollama/m", "openrouter/v/m"):
            it = chat.stream(model, prompt="a b c")
            finished: list[Any] = []
            it.on_finish = finished.append
            assert next(it) == "echo: "
            with pytest.raises(ProviderError, match="model crashed"):
                list(it)
            assert len(finished) == 1 and isinstance(finished[0], ProviderError)


def test_stream_start_failure_raises_before_iterating_or_falls_back(srv: LLMServer) -> None:
    srv.fail(401, {"error": {"message": "bad key"}})
    with make(srv) as chat:
        with pytest.raises(ProviderError, match="bad key"):
            chat.stream("opencode/m", prompt="x")
        srv.fail(500, times=3)
        chat2 = make(srv, models={"fallbacks": {"opencode/m": ["ollama/m"]}})
        assert "".join(chat2.stream("opencode/m", prompt="x")) == "echo: x"
        chat2.close()


def test_stream_closed_early_is_finished_as_cancelled(srv: LLMServer) -> None:
    finished: list[Any] = []
    with make(srv) as chat, chat.stream("ollama/m", prompt="a b c d e") as it:
        it.on_finish = finished.append
        next(it)
    assert it.cancelled and finished == [None]


# -- keys never leak -----------------------------------------------------------------------------


def test_keys_and_prompts_never_leak(srv: LLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the chat operation: results, errors, logs and the op log hold neither keys nor prompts."""
    caplog.set_level(logging.DEBUG)
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    prompt = "TOP-SECRET-PROMPT about payroll"
    key = KEYS["OPENROUTER_API_KEY"]
    texts: list[str] = []
    with lakehouse.open(tmp_path / "lake", embedder="hash", **provider_settings(srv.url)) as lake:
        lake.llm.policy = FAST
        result = lake.chat("openrouter/v/m", prompt=prompt)
        texts += [repr(result), json.dumps(result.to_dict()), repr(lake.llm.providers()), repr(lake.llm.models())]
        texts.append("".join(lake.chat("kimi/k", prompt=prompt, stream=True)))
        srv.fail(401, {"error": {"message": f"invalid key {key} (Bearer {key})"}})
        with pytest.raises(ProviderError) as info:
            lake.chat("openrouter/v/m", prompt=prompt)
        texts += [str(info.value), json.dumps(info.value.to_dict())]
        srv.fail(503, f"echoing {key}", times=3)
        with pytest.raises(ProviderError) as info:
            lake.chat("openrouter/v/m", prompt=prompt)
        texts += [str(info.value), json.dumps(info.value.to_dict())]
        root = lake.root
    ops_file = "".join(p.read_text() for p in sorted((root / "observer").glob("ops-*.jsonl")))
    texts += [ops_file, caplog.text]
    everything = "\n".join(texts)
    for secret in KEYS.values():
        assert secret not in everything
    assert "invalid key ***" in everything
    assert prompt not in ops_file and prompt not in caplog.text
    ops = [json.loads(line) for line in ops_file.splitlines()]
    assert [o["op"] for o in ops] == ["chat"] * 4 and [o["ok"] for o in ops] == [True, True, False, False]
    assert ops[0]["output"]["model"] == "openrouter/v/m" and ops[0]["output"]["provider"] == "openrouter"
    assert ops[0]["output"]["usage"]["total_tokens"] > 0 and ops[0]["duration_ms"] > 0
    assert ops[1]["output"]["stream"] is True and ops[1]["output"]["usage"]["completion_tokens"] > 0
    assert ops[2]["error_code"] == "provider_error" and "***" in ops[2]["error"]

"""HTTP chat routes: /v1/chat, the OpenAI-compatible gateway (with the official `openai` client) and /rag.

One lake and live server for the module, providers pointed at a loopback LLM server; tests that
need other keys or policies swap a fresh `ChatDispatcher` into `lake.llm`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from http_server import LiveServer, free_port
from llm_servers import LLMServer, chat_installer, llm_fixture, provider_settings, srv_fixture  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.engine.chat import ChatDispatcher
from lakehouse.http import create_app

MODELS = {"local_fast": "ollama/qwen3:4b", "frontier_review": "openrouter/anthropic/claude-sonnet-4",
          "fallbacks": {"local_fast": ["ollama/llama3.2:3b"]}}
WORKERS = b"""id,state,notes
1,IL,Forklift operator in Chicago IL with OSHA-10 certification
2,TX,Cashier in Austin TX with retail experience
3,IL,Forklift operator in Joliet IL with OSHA-10 and reach trucks
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, llm: LLMServer) -> Iterator[tuple[lakehouse.Lake, str]]:
    root = tmp_path_factory.mktemp("chat")
    lake = lakehouse.open(root / "lake", embedder="hash", models=MODELS, **provider_settings(llm.url))
    try:
        lake.ingest(WORKERS, "workers", filename="workers.csv")
        lake.create_corpus("workers", dataset="workers", id="id", text="notes", metadata=["state"], progress=False)
        with LiveServer(create_app(lake)) as url:
            yield lake, url
    finally:
        lake.close()


@pytest.fixture
def use_chat(served: tuple[lakehouse.Lake, str], llm: LLMServer,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ChatDispatcher]]:
    """use_chat(env={...}, **settings) -> a fresh dispatcher serving this test's requests."""
    with chat_installer(served[0], llm, monkeypatch, models=MODELS) as install:
        yield install


@pytest.fixture
def http(served: tuple[lakehouse.Lake, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1], timeout=30) as client:
        yield client


@pytest.fixture
def client(served: tuple[lakehouse.Lake, str]) -> Iterator[openai.OpenAI]:
    """The official client sends a key whatever the server wants; one the server does not know is a 401, so it sends
    a profile's (a chat-only tenant: no dataset, no corpus)."""
    lake = served[0]
    key = lake.create_profile(f"chat_{len(lake.list_profiles())}")["key"]
    with openai.OpenAI(base_url=served[1] + "/v1", api_key=key, max_retries=0, timeout=30) as c:
        yield c


# -- POST /v1/chat --------------------------------------------------------------------------------


def test_v1_chat_prompt(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    resp = http.post("/v1/chat", json={"model": "tier:local_fast", "prompt": "hello there", "system": "be brief",
                                       "temperature": 0.2, "max_tokens": 20})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == ["model", "provider", "content", "usage", "latency_ms", "attempts", "fallback_from"]
    assert body["model"] == "ollama/qwen3:4b" and body["provider"] == "ollama"
    assert body["content"] == "echo: hello there"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0
    assert body["latency_ms"] > 0
    sent = srv.requests[-1]
    assert sent.path == "/api/chat" and sent.body["think"] is False
    assert sent.body["options"] == {"temperature": 0.2, "num_predict": 20}
    assert sent.body["messages"] == [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "hello there"}]


def test_v1_chat_messages_to_openrouter(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    use_chat(env={"OPENROUTER_API_KEY": "sk-or-SECRET"})
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "second"}]
    body = http.post("/v1/chat", json={"model": "tier:frontier_review", "messages": messages}).json()
    assert body["provider"] == "openrouter" and body["model"] == "openrouter/anthropic/claude-sonnet-4"
    assert body["content"] == "echo: second" and "SECRET" not in json.dumps(body)
    sent = srv.requests[-1]
    assert sent.path == "/openrouter/api/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-or-SECRET"
    assert "temperature" not in sent.body and sent.body["messages"] == messages


def test_v1_chat_upstream_failure_is_502(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    use_chat(models={"local_fast": "ollama/qwen3:4b"})  # no fallback: the failure is the answer
    srv.fail(500, {"error": "model crashed"})
    resp = http.post("/v1/chat", json={"model": "tier:local_fast", "prompt": "x"})
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "provider_error" and error["provider"] == "ollama" and error["status"] == 500
    assert "HTTP 500" in error["message"] and "model crashed" in error["message"]
    # unreachable (the default local Ollama when it is not running), through the OpenAI route too
    use_chat(ollama_base=f"http://127.0.0.1:{free_port()}")
    for path, body in (("/v1/chat", {"model": "ollama/qwen3:4b", "prompt": "x"}),
                       ("/v1/chat/completions", {"model": "ollama/qwen3:4b",
                                                 "messages": [{"role": "user", "content": "x"}]})):
        resp = http.post(path, json=body)
        assert resp.status_code == 502 and list(resp.json()) == ["error"]
        assert resp.json()["error"]["code"] == "provider_error" and "cannot connect" in resp.json()["error"]["message"]


def test_v1_chat_falls_back_to_the_next_model(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    srv.fail(503)
    body = http.post("/v1/chat", json={"model": "tier:local_fast", "prompt": "x"}).json()
    assert body["model"] == "ollama/llama3.2:3b" and body["content"] == "echo: x"


# -- OpenAI-compatible gateway ----------------------------------------------------------------------


def test_openai_client_completion(client: openai.OpenAI, srv: LLMServer, use_chat: Any) -> None:
    resp = client.chat.completions.create(
        model="tier:local_fast", temperature=0.5, max_tokens=30,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}])
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-") and resp.created > 0
    assert resp.model == "ollama/qwen3:4b"
    assert len(resp.choices) == 1 and resp.choices[0].index == 0 and resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.role == "assistant" and resp.choices[0].message.content == "echo: hi there"
    u = resp.usage
    assert u is not None and u.total_tokens == u.prompt_tokens + u.completion_tokens and u.completion_tokens == 3
    assert srv.requests[-1].body["options"] == {"temperature": 0.5, "num_predict": 30}


def test_openai_client_streaming(client: openai.OpenAI, srv: LLMServer, use_chat: Any) -> None:
    use_chat(env={"KIMI_API_KEY": "sk-kimi"})
    stream = client.chat.completions.create(model="kimi/kimi-k2", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "stream these five words please"}])
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "kimi/kimi-k2" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream these five words please"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 5  # streamed, not one lump
    assert srv.requests[-1].path == "/kimi/coding/v1/chat/completions" and srv.requests[-1].body["stream"] is True


def test_sse_wire_format(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    with http.stream("POST", "/v1/chat/completions", json={
            "model": "tier:local_fast", "stream": True, "messages": [{"role": "user", "content": "a b"}]}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == "echo: a b"
    assert "usage" not in events[-1]  # only with stream_options.include_usage


def test_stream_that_cannot_start_is_a_json_error(client: openai.OpenAI, http: httpx.Client, srv: LLMServer,
                                                  use_chat: Any) -> None:
    resp = http.post("/v1/chat/completions", json={
        "model": "opencode/grok", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 503 and resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["code"] == "provider_not_configured" and "OPENCODE_API_KEY" in resp.text
    srv.fail(500, times=2)
    with pytest.raises(openai.InternalServerError) as info:  # our 502, before any event
        client.chat.completions.create(model="tier:local_fast", stream=True,
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502


def test_stream_failing_midway_raises_in_the_client(client: openai.OpenAI, srv: LLMServer, use_chat: Any,
                                                    served: tuple[lakehouse.Lake, str]) -> None:
    srv.stream_error = "upstream fell over"
    stream = client.chat.completions.create(model="tier:local_fast", stream=True,
                                            messages=[{"role": "user", "content": "one two three"}])
    with pytest.raises(openai.APIError, match="upstream fell over"):
        list(stream)
    op = [o for o in served[0].observer.ops if o.op == "chat"][-1]
    assert op.ok is False and op.origin == "http" and op.error_code == "provider_error"


def test_openai_message_forms(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    body = http.post("/v1/chat/completions", json={"model": "tier:local_fast", "max_completion_tokens": 9, "messages": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]}]})
    assert body.status_code == 200, body.text
    assert body.json()["choices"][0]["message"]["content"] == "echo: part one\npart two"
    assert srv.requests[-1].body["messages"][0] == {"role": "system", "content": "rules"}
    assert srv.requests[-1].body["options"] == {"num_predict": 9}


def test_openai_models(client: openai.OpenAI, http: httpx.Client, use_chat: Any) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert ids == ["tier:local_fast", "ollama/qwen3:4b", "ollama/llama3.2:3b", "tier:frontier_review",
                   "openrouter/anthropic/claude-sonnet-4"]
    owners = {m.id: m.owned_by for m in models}
    assert owners["tier:local_fast"] == "lakehouse" and owners["openrouter/anthropic/claude-sonnet-4"] == "openrouter"
    raw = http.get("/v1/models").json()
    assert raw["object"] == "list" and all(set(m) == {"id", "object", "created", "owned_by"} for m in raw["data"])
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in raw["data"])


# -- POST /rag ------------------------------------------------------------------------------------


def test_rag_route(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    resp = http.post("/rag", json={"question": "forklift operator with OSHA-10 in IL", "corpora": ["workers"], "k": 2,
                                   "model": "tier:local_fast", "where": "state = 'IL'"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    for key in ("answer", "citations", "model", "mode", "retrieval_ms", "generation_ms"):
        assert key in out
    assert out["model"] == "ollama/qwen3:4b" and out["mode"] == "vector" and out["answered_by"] == "model"
    assert {c["id"] for c in out["citations"]} == {"1", "3"}
    assert all(set(c) >= {"n", "corpus", "id", "text", "score"} and c["text"] in out["answer"]
               for c in out["citations"])


def test_rag_route_offline(http: httpx.Client, srv: LLMServer, use_chat: Any) -> None:
    use_chat(models={})  # no tier: nothing to generate with
    out = http.post("/rag", json={"question": "forklift operator with OSHA-10 in IL",
                                  "metadata_filter": {"state": "IL"}})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["answered_by"] == "extractive" and "generation needs a provider" in body["note"]
    assert {c["id"] for c in body["citations"]} == {"1", "3"} and srv.requests == []

"""Loopback LLM servers for tests: real HTTP on 127.0.0.1 speaking both chat wire formats.

    with LLMServer() as srv:          # one server answers every provider
        settings = Settings.load(ollama_base=srv.url, openrouter_base=srv.url + "/openrouter")
        ...
        srv.requests[-1].path / .headers / .body

Paths ending in `/api/chat` speak Ollama (NDJSON when streaming), paths ending in
`/chat/completions` speak OpenAI (SSE when streaming, `usage` in both forms). The reply is
built from the prompt received (`make_reply`): the numbered citation lines ("[1] ...") found in
any message, else an echo of the last user message, so RAG tests can see what reached the model.

Scripting: `srv.fail(429, headers={"Retry-After": "0.2"}, times=2)` queues canned failures
served before success; `srv.delay_s` sleeps before answering; `srv.stream_error` makes a
stream fail after its first delta; `srv.reply_fn` replaces `make_reply`; `srv.model_replies[model]`
(the upstream id, e.g. "vendor/a" of "openrouter/vendor/a") answers for one model instead.

Tool calls: a `reply_fn` may return `ToolCalls([{"name", "arguments": {...}}], content="")` instead
of a string; the (non-streamed) answer then carries them in the wire's own shape: OpenAI
`choices[0].message.tool_calls` with ids and JSON-string arguments (finish_reason "tool_calls"),
Ollama `message.tool_calls` with object arguments and no ids. `tool_turns(messages)` lists the
tool results a request carries, so a scripted model can answer once it has seen them.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lakehouse import Lake
from lakehouse.engine.chat import ChatDispatcher, ChatPolicy
from lakehouse.settings import Settings

log = logging.getLogger(__name__)

CITATION = re.compile(r"^\s*\[\d+\].*$", re.MULTILINE)


def make_reply(messages: list[dict[str, Any]]) -> str:
    """Deterministic answer: the citation lines of the prompt, or an echo of the last user turn."""
    cites = [m.group(0).strip() for msg in messages for m in CITATION.finditer(str(msg.get("content", "")))]
    if cites:
        return "Based on the sources:\n" + "\n".join(cites)
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return "echo: " + (users[-1] if users else "")


def count_tokens(text: str) -> int:
    return len(text.split())


@dataclasses.dataclass
class ToolCalls:
    """A scripted answer asking for tools: `calls` are `{"name", "arguments": dict}`."""

    calls: list[dict[str, Any]]
    content: str = ""


def tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `role: tool` messages of a request, in order."""
    return [m for m in messages if m.get("role") == "tool"]


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclasses.dataclass
class Failure:
    status: int
    headers: dict[str, str]
    body: Any


class LLMServer:
    """A ThreadingHTTPServer on an ephemeral port in a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failures: collections.deque[Failure] = collections.deque()
        self.delay_s = 0.0
        self.stream_error: str | None = None
        self.reply_fn: Callable[[list[dict[str, Any]]], str | ToolCalls] = make_reply
        self.model_replies: dict[str, Callable[[list[dict[str, Any]]], str | ToolCalls]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and tests start many servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="llm-server", daemon=True)

    def reset(self) -> None:
        """Forget recorded requests and scripted behaviour (module-scoped servers, per test)."""
        self.requests.clear()
        self.failures.clear()
        self.delay_s = 0.0
        self.reply_fn, self.stream_error = make_reply, None
        self.model_replies = {}

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Queue `times` canned failures, served (to any path) before normal answers resume."""
        if body is None:
            body = {"error": {"message": f"canned failure {status}"}}
        for _ in range(times):
            self.failures.append(Failure(status, dict(headers or {}), body))

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_failure(self) -> Failure | None:
        with self._lock:
            return self.failures.popleft() if self.failures else None


def _handler_for(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams like real Ollama
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("llm-server: " + format, *args)

        def do_GET(self) -> None:  # noqa: N802
            server.requests.append(Recorded("GET", self.path, self._headers(), None))
            self._json(200, {"models": [], "data": []})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            server.requests.append(Recorded("POST", self.path, self._headers(), body))
            if server.delay_s:
                time.sleep(server.delay_s)
            failure = server._next_failure()
            try:
                if failure is not None:
                    self._json(failure.status, failure.body, failure.headers)
                elif self.path.endswith("/api/chat"):
                    self._ollama(body if isinstance(body, dict) else {})
                elif self.path.endswith("/chat/completions"):
                    self._openai(body if isinstance(body, dict) else {})
                else:
                    self._json(404, {"error": f"no route {self.path}"})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests); nothing to answer

        def _headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.headers.items()}

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _start_stream(self, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end_stream(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _reply(self, body: dict[str, Any]) -> tuple[str, list[str], int, int, list[dict[str, Any]]]:
            messages = body.get("messages") or []
            answer = server.model_replies.get(body.get("model"), server.reply_fn)(messages)
            calls = answer.calls if isinstance(answer, ToolCalls) else []
            text = answer.content if isinstance(answer, ToolCalls) else answer
            prompt_tokens = sum(count_tokens(str(m.get("content") or "")) for m in messages)
            pieces = re.findall(r"\S+\s*|\s+", text) or [""]
            return text, pieces, prompt_tokens, count_tokens(text), calls

        def _ollama(self, body: dict[str, Any]) -> None:
            text, pieces, p, c, calls = self._reply(body)
            model = body.get("model", "")
            if not body.get("stream", True):  # Ollama streams unless told not to
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if calls:
                    message["tool_calls"] = [{"function": {"name": k["name"], "arguments": k["arguments"]}}
                                             for k in calls]
                self._json(200, {"model": model, "message": message,
                                 "done": True, "prompt_eval_count": p, "eval_count": c})
                return
            if calls:
                self._json(400, {"error": "the loopback server does not stream tool calls"})
                return
            self._start_stream("application/x-ndjson")
            for i, piece in enumerate(pieces):
                self._chunk(json.dumps({"model": model, "message": {"role": "assistant", "content": piece},
                                        "done": False}) + "\n")
                if i == 0 and server.stream_error:
                    self._chunk(json.dumps({"error": server.stream_error}) + "\n")
                    self._end_stream()
                    return
            self._chunk(json.dumps({"model": model, "message": {"role": "assistant", "content": ""},
                                    "done": True, "prompt_eval_count": p, "eval_count": c}) + "\n")
            self._end_stream()

        def _openai(self, body: dict[str, Any]) -> None:
            text, pieces, p, c, calls = self._reply(body)
            model = body.get("model", "")
            usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
            if not body.get("stream"):
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if calls:
                    message["content"] = text or None  # as OpenAI sends it when the model only calls tools
                    message["tool_calls"] = [
                        {"id": f"call_{len(server.requests)}_{i}", "type": "function",
                         "function": {"name": k["name"], "arguments": json.dumps(k["arguments"])}}
                        for i, k in enumerate(calls)]
                self._json(200, {"id": "cmpl-test", "object": "chat.completion", "model": model,
                                 "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop",
                                              "message": message}],
                                 "usage": usage})
                return
            if calls:
                self._json(400, {"error": {"message": "the loopback server does not stream tool calls"}})
                return
            self._start_stream("text/event-stream")
            self._chunk(": keep-alive comment, as OpenRouter sends\n\n")
            for i, piece in enumerate(pieces):
                chunk = {"id": "cmpl-test", "object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n")
                if i == 0 and server.stream_error:
                    self._chunk(f"data: {json.dumps({'error': {'message': server.stream_error}})}\n\n")
                    self._end_stream()
                    return
            if (body.get("stream_options") or {}).get("include_usage"):
                self._chunk(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n")
            self._chunk("data: [DONE]\n\n")
            self._end_stream()

    return Handler


def provider_settings(url: str) -> dict[str, str]:
    """Settings overrides pointing every chat provider at one loopback server.

    Each provider gets its own path prefix so `srv.requests[i].path` shows who was called;
    `key_file` is emptied so no test reads /etc/lakehouse/.env.
    """
    return {
        "ollama_base": url,
        "ollama_cloud_base": f"{url}/cloud",
        "openrouter_base": f"{url}/openrouter/api/v1",
        "opencode_base": f"{url}/opencode/zen/v1",
        "kimi_base": f"{url}/kimi/coding/v1",
        "key_file": "",
    }


FAST = ChatPolicy(timeout_s=5.0, retries=0, cooldown_failures=0)  # tests want failures now, not after retries


@contextlib.contextmanager
def chat_installer(lake: Lake, llm: LLMServer, monkeypatch: pytest.MonkeyPatch,
                   **base: Any) -> Iterator[Callable[..., ChatDispatcher]]:
    """install(env=None, **settings) -> a fresh dispatcher (every provider on `llm`, FAST policy, `base`
    settings under the call's) installed as `lake.llm`; one is installed at once, all are closed on exit."""
    made: list[ChatDispatcher] = []

    def install(env: dict[str, str] | None = None, **overrides: Any) -> ChatDispatcher:
        settings = Settings.load(env={}, **{**base, **provider_settings(llm.url), **overrides})
        chat = ChatDispatcher(settings, env=env or {}, policy=FAST)
        made.append(chat)
        monkeypatch.setitem(lake.__dict__, "llm", chat)
        return chat

    install()
    try:
        yield install
    finally:
        for chat in made:
            chat.close()


@pytest.fixture(name="llm", scope="module")
def llm_fixture() -> Iterator[LLMServer]:
    """One loopback LLM server per test module (import it: `from llm_servers import llm_fixture`)."""
    with LLMServer() as server:
        yield server


@pytest.fixture(name="srv")
def srv_fixture(llm: LLMServer) -> Iterator[LLMServer]:
    """The module's LLM server, reset for this test."""
    llm.reset()
    yield llm
    llm.reset()

"""Loopback embedding servers that speak the real Ollama and OpenAI wire formats.

    with EmbedServer(key="sk-test") as srv:
        get_embedder("ollama/m", Settings.load(env={}, ollama_base=srv.url))
        get_embedder("openai/m", Settings.load(env={}, openai_embed_base=srv.url + "/v1"))

One stdlib `ThreadingHTTPServer` on 127.0.0.1 (port 0) in a daemon thread serves both
`POST /api/embed` (Ollama) and `POST /v1/embeddings` (OpenAI-compatible). Vectors are the hash
embedder's for the input text, so answers are deterministic and texts sharing words are
similar. Every request is recorded in `srv.requests`; `srv.fail`, `srv.delay` switch on
failure modes for error-mapping tests. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lakehouse.engine.embedders.hashing import HashEmbedder


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    """Answer with this instead of embeddings: a status and a raw body."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class EmbedServer:
    dim: int = 32
    key: str | None = None  # if set, /v1/embeddings demands "Authorization: Bearer <key>"
    delay: float = 0.0  # seconds to sleep before answering (timeout tests)
    fail: Failure | None = None
    shuffle: bool = True  # OpenAI answers in reverse index order, so clients must sort
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._embedder = HashEmbedder(self.dim)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def vectors(self, texts: list[str]) -> list[list[float]]:
        """What the server answers for `texts` (unit rows, so clients' renormalising is a no-op)."""
        return self._embedder.embed(texts).tolist()

    def __enter__(self) -> EmbedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                server.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                if server.delay:
                    time.sleep(server.delay)
                if server.fail is not None:
                    return self._send(server.fail.status, server.fail.body, server.fail.content_type)
                if self.path == "/api/embed":
                    return self._ollama(body)
                if self.path == "/v1/embeddings":
                    return self._openai(body)
                return self._json(404, {"error": f"no route {self.path}"})

            def _ollama(self, body: Any) -> None:
                if not (isinstance(body, dict) and isinstance(body.get("model"), str)):
                    return self._json(400, {"error": "model is required"})
                texts = body.get("input")
                if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
                    return self._json(400, {"error": "input must be a list of strings"})
                self._json(200, {"model": body["model"], "embeddings": server.vectors(texts)})

            def _openai(self, body: Any) -> None:
                if server.key is not None and self.headers.get("Authorization") != f"Bearer {server.key}":
                    given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    # Real OpenAI echoes (part of) the bad key: clients must not pass it on.
                    msg = f"Incorrect API key provided: {given}. You can find your API key at ..."
                    return self._json(401, {"error": {"message": msg, "type": "invalid_request_error"}})
                if not (isinstance(body, dict) and isinstance(body.get("model"), str)):
                    return self._json(400, {"error": {"message": "model is required"}})
                texts = body.get("input")
                if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
                    return self._json(400, {"error": {"message": "input must be a list of strings"}})
                data = [
                    {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(server.vectors(texts))
                ]
                if server.shuffle:
                    data.reverse()
                usage = {"prompt_tokens": 0, "total_tokens": 0}
                self._json(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

            def _json(self, status: int, obj: Any) -> None:
                self._send(status, json.dumps(obj).encode(), "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    # One request per connection: nothing is left open when the server stops.
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

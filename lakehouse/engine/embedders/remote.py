"""HTTP embedders: `ollama/<model>` and `openai/<model>` (any OpenAI-compatible server).

Wire formats:

- Ollama: `POST {ollama_base}/api/embed` with `{"model": m, "input": [texts]}`, answering
  `{"embeddings": [[...], ...]}`.
- OpenAI-compatible: `POST {openai_embed_base}/embeddings` (the base ends in `/v1`) with
  `{"model": m, "input": [texts]}`, answering `{"data": [{"index": i, "embedding": [...]}]}`;
  rows are put back in `index` order. `Authorization: Bearer <key>` is sent when `OPENAI_API_KEY`
  is found the way chat providers find theirs (`chat.keys.KeyRing`: the environment, then the
  `key_file` dotenv), read when the embedder is built. A key file that may not be read (wrong
  mode) and no key in the environment makes every call raise `Forbidden` naming the file, rather
  than send an unauthenticated request.

The dimension is not configured: it is learned from the first response. Reading `dim` (or
`id`, or embedding an empty list) before any text was embedded makes one probe request with a
single short text. A later response of another width is a `ProviderError`.

Every failure — connection, timeout, HTTP status, malformed body — becomes
`lakehouse.errors.ProviderError(message, provider=..., model=...)`, with `status=<upstream status>`
once there is a response. Transport failures go through chat's `wire.provider_errors` (timeouts:
code `provider_timeout`). Upstream messages are trimmed to ~300 characters and scrubbed of the key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import httpx
import numpy as np

from lakehouse.engine.chat.keys import KeyRing
from lakehouse.engine.chat.wire import error_from_body, provider_errors, trim
from lakehouse.engine.embedders.base import Embedder, register
from lakehouse.errors import Forbidden, InvalidInput, ProviderError

if TYPE_CHECKING:
    from lakehouse.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # a cold model load on Ollama takes a while
PROBE_TEXT = "dimension probe"
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


class RemoteEmbedder(Embedder):
    """Shared HTTP plumbing; subclasses say where to POST and how to read the answer."""

    provider: ClassVar[str] = ""
    batch_size = 64
    progress_min_texts = 256

    def __init__(self, model: str, base: str, *, client: httpx.Client | None = None) -> None:
        if not model:
            raise InvalidInput(f"{self.family} embedder needs a model: {self.spec_help}")
        self.model = model
        self.base = base.rstrip("/")
        self.name = f"{self.family}/{model}"
        self._client = client
        self._owns_client = client is None
        self._dim: int | None = None
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._embed_batch([PROBE_TEXT])  # sets _dim
        assert self._dim is not None
        return self._dim

    @property
    def id(self) -> str:  # type: ignore[override]
        return f"{self.name}:{self.dim}"

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=DEFAULT_TIMEOUT)
        return self._client

    def close(self) -> None:
        """Close the HTTP client if this embedder created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def _url(self) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {}

    def _parse(self, body: Any, n: int) -> list[list[float]]:
        raise NotImplementedError

    def _scrub(self, text: str) -> str:
        """Remove secrets from text bound for an error message (subclasses add their keys)."""
        return _BEARER.sub(r"\1***", text)

    def _error(self, message: str, status: int | None = None) -> ProviderError:
        return ProviderError(self._scrub(message), provider=self.family, model=self.model, status=status)

    def _timeout_s(self) -> float:
        """For the timeout message: httpx has four limits and does not say which one fired."""
        t = self.client.timeout
        return max((v for v in (t.connect, t.read, t.write, t.pool) if v is not None), default=0.0)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        payload = {"model": self.model, "input": texts}
        url, headers = self._url(), self._headers()
        with provider_errors(self.family, url, self._timeout_s(), self._scrub, model=self.model):
            resp = self.client.post(url, json=payload, headers=headers)
        if resp.status_code >= 400:
            raise self._error(
                f"{self.family} embeddings failed with HTTP {resp.status_code}: {error_from_body(resp.content)}",
                status=resp.status_code,
            )
        try:
            body = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._error(
                f"{self.family} embeddings returned a body that is not JSON: {trim(resp.text)!r}",
                status=resp.status_code,
            ) from None
        try:
            rows = self._parse(body, len(texts))
            vecs = np.asarray(rows, dtype=np.float32)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._error(
                f"{self.family} embeddings returned an unexpected body ({type(exc).__name__}: {trim(str(exc))})",
                status=resp.status_code,
            ) from None
        if vecs.ndim != 2 or vecs.shape[0] != len(texts) or vecs.shape[1] == 0:
            raise self._error(
                f"{self.family} embeddings returned shape {vecs.shape} for {len(texts)} texts",
                status=resp.status_code,
            )
        if not np.isfinite(vecs).all():
            raise self._error(f"{self.family} embeddings returned non-finite values", status=resp.status_code)
        with self._lock:
            if self._dim is None:
                self._dim = int(vecs.shape[1])
                log.info("%s: learned dimension %d", self.name, self._dim)
        if vecs.shape[1] != self._dim:
            raise self._error(f"{self.family} embeddings changed dimension from {self._dim} to {vecs.shape[1]}")
        return vecs


@register("ollama")
class OllamaEmbedder(RemoteEmbedder):
    """`ollama/<model>` via Ollama's `/api/embed` (settings.ollama_base)."""

    spec_help = "ollama/<model>"  # e.g. ollama/nomic-embed-text

    @classmethod
    def from_spec(cls, arg: str | None, settings: Settings, client: httpx.Client | None = None) -> Embedder:
        return cls(arg or "", settings.ollama_base, client=client)

    def _url(self) -> str:
        return f"{self.base}/api/embed"

    def _parse(self, body: Any, n: int) -> list[list[float]]:
        return body["embeddings"]


@register("openai")
class OpenAIEmbedder(RemoteEmbedder):
    """`openai/<model>` via an OpenAI-compatible `/embeddings` (settings.openai_embed_base)."""

    spec_help = "openai/<model>"  # e.g. openai/text-embedding-3-small
    key_env = "OPENAI_API_KEY"

    def __init__(
        self, model: str, base: str, *, client: httpx.Client | None = None, keys: KeyRing | None = None
    ) -> None:
        if not base:
            raise InvalidInput(
                "the openai embedder needs the server's base URL (like http://host:8000/v1): "
                "set LH_OPENAI_EMBED_BASE or openai_embed_base in lakehouse.toml"
            )
        if urlsplit(base).scheme not in ("http", "https"):
            raise InvalidInput(f"openai_embed_base must be an http(s) URL, got {base!r}")
        super().__init__(model, base, client=client)
        # Unlike Ollama model tags, OpenAI-compatible model names are per server.
        self.server = urlsplit(self.base).netloc
        self.keys = keys if keys is not None else KeyRing([self.key_env], os.environ, None)

    @classmethod
    def from_spec(cls, arg: str | None, settings: Settings, client: httpx.Client | None = None) -> Embedder:
        keys = KeyRing([cls.key_env], os.environ, settings.key_file)
        return cls(arg or "", settings.openai_embed_base, client=client, keys=keys)

    @property
    def id(self) -> str:  # type: ignore[override]
        return f"{self.name}@{self.server}:{self.dim}"

    def _url(self) -> str:
        return f"{self.base}/embeddings"

    def _scrub(self, text: str) -> str:
        return super()._scrub(self.keys.scrub(text))

    def _headers(self) -> dict[str, str]:
        key = self.keys.get(self.key_env)
        if key:
            return {"Authorization": f"Bearer {key}"}
        err = self.keys.file_error
        if err is not None:
            # As chat does for a missing key: refuse rather than call the server without one.
            raise Forbidden(
                f"the {self.family} embedder has no {self.key_env} in the environment and cannot use "
                f"the key file: {err.message}",
                key_env=self.key_env, **err.details,
            )
        return {}  # a local OpenAI-compatible server often needs no key

    def _parse(self, body: Any, n: int) -> list[list[float]]:
        items = sorted(body["data"], key=lambda d: int(d["index"]))
        if [int(d["index"]) for d in items] != list(range(n)):
            raise ValueError(f"indexes are not 0..{n - 1}")
        return [d["embedding"] for d in items]

"""The embedder registry: a spec string in, a ready `Embedder` out.

    get_embedder("minilm")                    # all-MiniLM-L6-v2 int8, 384-d, offline (default)
    get_embedder("hash")  / ("hash:256")      # deterministic feature hashing, for tests
    get_embedder("ollama/nomic-embed-text")   # settings.ollama_base + /api/embed
    get_embedder("openai/text-embedding-3-small")  # settings.openai_embed_base + /embeddings

A spec is `family`, `family:arg` or `family/arg` ("/" wins, so Ollama tags like
`ollama/all-minilm:33m` keep their colon). Families register with `@register("name")`.
Instances are cached per (spec, base URL) so the ONNX model loads once per process; an
injected `client` bypasses the cache (the caller owns that client's lifetime).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lakehouse.engine.embedders.base import REGISTRY as _REGISTRY
from lakehouse.engine.embedders.base import Embedder, l2_normalise, register
from lakehouse.errors import InvalidInput
from lakehouse.settings import Settings

if TYPE_CHECKING:
    import httpx

__all__ = ["Embedder", "available", "clear_cache", "get_embedder", "l2_normalise", "register"]

_CACHE: dict[tuple[str, ...], Embedder] = {}  # (normalised spec, *where it runs) -> instance
_LOCK = threading.Lock()


def available() -> list[str]:
    """Registered family names, sorted: ['hash', 'minilm', 'ollama', 'openai']."""
    return sorted(_REGISTRY)


def _split(spec: str) -> tuple[str, str | None]:
    spec = spec.strip()
    for sep in ("/", ":"):
        family, found, arg = spec.partition(sep)
        if found:
            return family.strip().lower(), arg.strip()
    return spec.lower(), None


def _known() -> str:
    return ", ".join(_REGISTRY[n].spec_help for n in available())


def _where(family: str, settings: Settings) -> tuple[str, ...]:
    """The rest of the cache key: the same spec on another server, or with keys from another key file
    (read when the embedder is built), is another embedder."""
    if family == "ollama":
        return (settings.ollama_base,)
    if family == "openai":
        return (settings.openai_embed_base, settings.key_file)
    return ()


def get_embedder(
    spec: str,
    settings: Settings | None = None,
    *,
    client: httpx.Client | None = None,
) -> Embedder:
    """Resolve `spec` to an embedder; unknown specs raise InvalidInput naming the known ones."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInput(f"embedder spec must be a non-empty string; known: {_known()}", code="unknown_embedder")
    family, arg = _split(spec)
    cls = _REGISTRY.get(family)
    if cls is None:
        raise InvalidInput(f"unknown embedder {spec!r}; known: {_known()}", code="unknown_embedder", spec=spec)
    settings = settings if settings is not None else Settings.load()
    if client is not None:
        return cls.from_spec(arg, settings, client)
    key = (f"{family}:{arg or ''}", *_where(family, settings))  # "MiniLM" and "minilm" share
    with _LOCK:  # construction is cheap (models load lazily), so holding the lock is fine
        emb = _CACHE.get(key)
        if emb is None:
            emb = _CACHE[key] = cls.from_spec(arg, settings, None)
        return emb


def clear_cache() -> None:
    """Forget (and close) cached instances: tests, or after settings change in a long-lived process."""
    with _LOCK:
        cached = list(_CACHE.values())
        _CACHE.clear()
    for emb in cached:
        close = getattr(emb, "close", None)
        if close is not None:
            close()


# Importing the families registers them (@register); their heavy imports are lazy.
from lakehouse.engine.embedders import hashing, minilm, remote  # noqa: E402, F401

"""Scrubbing secrets out of text: every API key this process has loaded, in any representation (raw,
escaped, URL-encoded, base64, a prefix of 10+ characters), URL credentials and Authorization values.

A leaf module (nothing of Lakehouse imported), so that every error message (`LakehouseError`), log record
and ObservedOp can be scrubbed on its way out. Keys are added by `engine.chat.keys.KeyRing` when loaded.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
_AUTH = re.compile(r"\b(Bearer|Basic|(?i:authorization)\s*[:=])\s*[^\s'\"]{8,}")
PREFIX = 10  # a key's first characters: enough to find a truncated echo of it, too few to be anything else


class _Scrubber:
    """Every secret this process has loaded, as one regex of all its representations."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) < 4 or secret in self._secrets:
            return
        with self._lock:
            self._secrets.add(secret)
            forms = set(_forms(secret))
            old = self._pattern.pattern if self._pattern is not None else None
            alts = sorted(forms, key=len, reverse=True)
            extra = "|".join(alts)
            self._pattern = re.compile(f"{old}|{extra}" if old else extra)

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub("***", text)
        text = _USERINFO.sub(r"\1***@", text)
        return _AUTH.sub(r"\1 ***", text)


def _forms(secret: str) -> Iterable[str]:
    """Regex alternatives matching the secret as it may be printed."""
    raw = secret.encode("utf-8", "surrogateescape")
    texts = {secret, json.dumps(secret)[1:-1], secret.encode("unicode_escape").decode("ascii"),
             repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    for t in texts:
        yield re.escape(t)
    for offset in range(3):  # base64 at each alignment within a longer encoded text (Basic auth: user:key)
        enc = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = (offset * 4 + 2) // 3 + (1 if offset else 0)
        core = enc[start:].rstrip("=")
        core = core[: len(core) - 1] if len(core) > 8 else core  # the last char depends on what follows
        if len(core) >= 8:
            yield re.escape(core)
            yield re.escape(core.replace("+", "-").replace("/", "_"))  # urlsafe alphabet
    if len(secret) > PREFIX:
        yield re.escape(secret[:PREFIX]) + r"[A-Za-z0-9._~+/=-]*"  # a truncated echo: "sk-or-v1-ab…"


SCRUB = _Scrubber()


def scrub(text: str) -> str:
    """`text` without any loaded key (in any representation) or URL credentials."""
    return SCRUB(text)



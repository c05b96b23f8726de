"""Which provider answers a model name, and the tier table that names models.

    ollama/<model>         local Ollama      {ollama_base}/api/chat            no auth
    ollama_cloud/<model>   Ollama Cloud      {ollama_cloud_base}/api/chat      Bearer OLLAMA_CLOUD_KEY
    <model>:cloud          Ollama Cloud (suffix form; also `ollama/<model>:cloud`)
    openrouter/<v>/<m>     OpenRouter        {openrouter_base}/chat/completions Bearer OPENROUTER_API_KEY
    opencode/<model>       OpenCode Zen      {opencode_base}/chat/completions  Bearer OPENCODE_API_KEY
    kimi/<model>           Kimi              {kimi_base}/chat/completions      Bearer KIMI_API_KEY
    anything else          local Ollama, name unchanged (so `hf.co/user/model` still works)
    tier:<name>            the model configured for that tier (see `ModelTable`)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from lakehouse.errors import InvalidInput, SettingsError


@dataclasses.dataclass(frozen=True)
class ProviderSpec:
    name: str
    wire: str  # "ollama" (NDJSON /api/chat) or "openai" (SSE /chat/completions)
    base_setting: str  # the Settings attribute holding the base URL
    key_env: str | None  # None: no key needed


PROVIDERS: dict[str, ProviderSpec] = {
    p.name: p
    for p in (
        ProviderSpec("ollama", "ollama", "ollama_base", None),
        ProviderSpec("ollama_cloud", "ollama", "ollama_cloud_base", "OLLAMA_CLOUD_KEY"),
        ProviderSpec("openrouter", "openai", "openrouter_base", "OPENROUTER_API_KEY"),
        ProviderSpec("opencode", "openai", "opencode_base", "OPENCODE_API_KEY"),
        ProviderSpec("kimi", "openai", "kimi_base", "KIMI_API_KEY"),
    )
}

TIER_PREFIX = "tier:"
CLOUD_SUFFIX = ":cloud"
# Keys of the [models] table that are not tiers. Non-string values are skipped as well, so
# other features may keep their own entries (lists, tables) in the same table.
RESERVED_KEYS = frozenset({"fallbacks", "policy", "weak", "strong"})
_BAD_NAME = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_model(model: str) -> tuple[str, str]:
    """'openrouter/meta/llama-3' -> ('openrouter', 'meta/llama-3'); bare names go to local Ollama."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(f"model must be a non-empty string, got {model!r}", code="invalid_model")
    if _BAD_NAME.search(model):
        raise InvalidInput(f"model name {model!r} contains whitespace or control characters", code="invalid_model")
    head, sep, rest = model.partition("/")
    provider, upstream = (head, rest) if sep and head in PROVIDERS else ("ollama", model)
    if provider in ("ollama", "ollama_cloud") and upstream.endswith(CLOUD_SUFFIX):
        provider, upstream = "ollama_cloud", upstream[: -len(CLOUD_SUFFIX)]
    if not upstream:
        raise InvalidInput(f"model {model!r} names a provider but no model", code="invalid_model")
    return provider, upstream


def canonical(provider: str, upstream: str) -> str:
    """The routable id written into results and ops: 'ollama_cloud/gpt-oss:120b'."""
    return f"{provider}/{upstream}"


class ModelTable:
    """The `[models]` table: tiers and their fallbacks.

    String values are tiers; `fallbacks` maps a tier (or a literal model id) to models tried in
    order when it fails; `policy` holds `ChatPolicy` overrides. Entries may name tiers.
    """

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        raw = dict(raw or {})
        self.tiers: dict[str, str] = {
            k: v for k, v in raw.items() if k not in RESERVED_KEYS and isinstance(v, str)
        }
        fallbacks = raw.get("fallbacks", {})
        if not isinstance(fallbacks, Mapping):
            raise SettingsError("[models.fallbacks] must be a table of lists of model ids")
        self.fallbacks: dict[str, list[str]] = {}
        for key, value in fallbacks.items():
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingsError(f"[models.fallbacks].{key} must be a list of model ids, got {value!r}")
            self.fallbacks[key] = list(value)
        self.policy: Mapping[str, Any] = raw.get("policy", {})
        # the downgrade gate's model-strength globs (matrix/gate.py); None: its defaults
        self.weak, self.strong = (self._patterns(raw, key) for key in ("weak", "strong"))

    @staticmethod
    def _patterns(raw: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise SettingsError(f"[models] {key} must be a list of glob patterns, got {value!r}")
        return tuple(value)

    def resolve_tier(self, model: str) -> str:
        """'tier:local_judge' -> its configured id (tiers may name tiers); other names unchanged."""
        seen: list[str] = []
        while isinstance(model, str) and model.startswith(TIER_PREFIX):
            name = model[len(TIER_PREFIX):]
            if name in seen:
                raise InvalidInput(f"tier loop: {' -> '.join(seen + [name])}", code="tier_loop")
            seen.append(name)
            if name not in self.tiers:
                known = ", ".join(sorted(self.tiers)) or "none configured; add a [models] table"
                raise InvalidInput(f"unknown model tier {name!r}; known tiers: {known}", code="unknown_tier", tier=name)
            model = self.tiers[name]
        return model

    def candidates(self, model: str) -> list[str]:
        """The resolved model followed by its fallbacks, without duplicates."""
        primary = self.resolve_tier(model)
        keys = [model[len(TIER_PREFIX):]] if model.startswith(TIER_PREFIX) else []
        keys.append(primary)
        out = [primary]
        for key in keys:
            for fb in self.fallbacks.get(key, ()):
                resolved = self.resolve_tier(fb)
                if resolved not in out:
                    out.append(resolved)
        return out

    def listing(self) -> list[str]:
        """Tier names and the ids they point at, for GET /v1/models."""
        out: list[str] = []
        for name, target in self.tiers.items():
            for item in [TIER_PREFIX + name, target, *self.fallbacks.get(name, ())]:
                if item not in out:
                    out.append(item)
        return out

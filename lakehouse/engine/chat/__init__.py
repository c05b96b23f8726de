"""Chat dispatcher: one call shape for local Ollama, Ollama Cloud and OpenAI-compatible providers.

    from lakehouse.engine.chat import ChatDispatcher
    chat = ChatDispatcher(settings, observer=observer)
    chat.chat("tier:local_fast", prompt="Summarise ...").content
    for delta in chat.stream("openrouter/anthropic/claude-sonnet-4", prompt="..."): ...

Model names (see `routing.py`): `ollama/<m>`, `ollama_cloud/<m>` or `<m>:cloud`,
`openrouter/<vendor>/<m>`, `opencode/<m>`, `kimi/<m>`, a bare name (local Ollama), or
`tier:<name>`. Base URLs come from Settings (`ollama_base`, `ollama_cloud_base`,
`openrouter_base`, `opencode_base`, `kimi_base`). Keys come from the environment
(`OLLAMA_CLOUD_KEY`, `OPENROUTER_API_KEY`, `OPENCODE_API_KEY`, `KIMI_API_KEY`), then from
`settings.key_file` (dotenv, must be mode 600). A provider without a key raises
`ProviderNotConfigured` naming the variable to set.

Tiers, fallbacks and the retry policy live in the `[models]` table of `lakehouse.toml`:

    [models]
    local_fast      = "ollama/qwen3:4b"        # every string value is a tier
    local_judge     = "ollama/qwen3:8b"
    cloud_judge     = "gpt-oss:120b:cloud"
    frontier_review = "openrouter/anthropic/claude-sonnet-4"

    [models.fallbacks]                          # tried in order once a model fails after retries
    local_fast  = ["ollama/llama3.2:3b"]
    cloud_judge = ["tier:local_judge"]          # entries may name tiers; keys may be model ids

    [models.policy]                             # ChatPolicy fields, all optional
    timeout_s = 120          # per HTTP attempt; chat(timeout_s=) overrides
    retries = 2              # extra attempts on 429 / 5xx
    backoff_s = 0.5          # doubled per retry, capped by backoff_max_s
    retry_after_cap_s = 30   # longest Retry-After honoured
    cooldown_failures = 3    # consecutive failed calls before a provider is skipped ...
    cooldown_s = 30          # ... for this many seconds

Every call records one ObservedOp (op "chat", target = the model that answered, extra:
provider, requested, usage, latency_ms, attempts, fallback_from[, stream]); never prompt text
or keys.
"""

from __future__ import annotations

from lakehouse.engine.chat.dispatcher import ChatDispatcher, ChatStream
from lakehouse.engine.chat.routing import PROVIDERS, parse_model
from lakehouse.engine.chat.types import ChatMessage, ChatPolicy, ChatResult

__all__ = [
    "PROVIDERS",
    "ChatDispatcher",
    "ChatMessage",
    "ChatPolicy",
    "ChatResult",
    "ChatStream",
    "parse_model",
]

"""Chat dispatcher without the network: names, tiers, keys, inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_servers import provider_settings

import lakehouse
from lakehouse.engine.chat import ChatDispatcher, ChatMessage, ChatPolicy, parse_model
from lakehouse.engine.chat.keys import KeyRing, parse_dotenv, read_key_file
from lakehouse.engine.chat.types import build_messages
from lakehouse.errors import Forbidden, InvalidInput, ProviderNotConfigured, SettingsError
from lakehouse.settings import Settings

KEY_VARS = ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY")
MODELS = {
    "local_fast": "ollama/qwen3:4b",
    "local_judge": "qwen3:8b",
    "cloud_judge": "gpt-oss:120b:cloud",
    "frontier_review": "openrouter/anthropic/claude-sonnet-4",
    "alias": "tier:local_judge",
    "fallbacks": {"local_fast": ["ollama/llama3.2:3b", "tier:local_judge"]},
    "weak_patterns": ["not a tier: lists are left to other features"],
}


def make(env: dict[str, str] | None = None, **overrides: object) -> ChatDispatcher:
    values = {**provider_settings("http://127.0.0.1:9"), "models": MODELS, **overrides}
    return ChatDispatcher(Settings.load(env={}, **values), env=env or {})


@pytest.mark.parametrize(
    ("model", "provider", "upstream"),
    [
        ("ollama/qwen3:4b", "ollama", "qwen3:4b"),
        ("qwen3:4b", "ollama", "qwen3:4b"),
        ("hf.co/unsloth/Qwen3-4B-GGUF:Q4_K_M", "ollama", "hf.co/unsloth/Qwen3-4B-GGUF:Q4_K_M"),
        ("ollama_cloud/gpt-oss:120b", "ollama_cloud", "gpt-oss:120b"),
        ("gpt-oss:120b:cloud", "ollama_cloud", "gpt-oss:120b"),
        ("ollama/gpt-oss:120b:cloud", "ollama_cloud", "gpt-oss:120b"),
        ("openrouter/meta-llama/llama-3.3-70b", "openrouter", "meta-llama/llama-3.3-70b"),
        ("opencode/qwen3-coder", "opencode", "qwen3-coder"),
        ("kimi/kimi-for-coding", "kimi", "kimi-for-coding"),
    ],
)
def test_routes_every_prefix_and_the_cloud_suffix(model: str, provider: str, upstream: str) -> None:
    assert parse_model(model) == (provider, upstream)


@pytest.mark.parametrize("bad", ["", "  ", "openrouter/", "qwen3 4b", "a\nb", None])
def test_bad_model_names_are_invalid_input(bad: object) -> None:
    with pytest.raises(InvalidInput):
        parse_model(bad)  # type: ignore[arg-type]


def test_resolve_takes_base_urls_from_settings() -> None:
    chat = make()
    url = "http://127.0.0.1:9"
    assert chat.resolve("ollama/qwen3:4b") == ("ollama", "qwen3:4b", url)
    assert chat.resolve("x:cloud") == ("ollama_cloud", "x", f"{url}/cloud")
    assert chat.resolve("openrouter/a/b") == ("openrouter", "a/b", f"{url}/openrouter/api/v1")
    assert chat.resolve("opencode/m") == ("opencode", "m", f"{url}/opencode/zen/v1")
    assert chat.resolve("kimi/k2") == ("kimi", "k2", f"{url}/kimi/coding/v1")


def test_default_bases_are_the_documented_ones() -> None:
    chat = ChatDispatcher(Settings.load(env={}, key_file=""), env={})
    assert chat.resolve("m")[2] == "http://127.0.0.1:11434"
    assert chat.resolve("m:cloud")[2] == "https://ollama.com"
    assert chat.resolve("opencode/m")[2] == "https://opencode.ai/zen/v1"
    assert chat.resolve("kimi/m")[2] == "https://api.kimi.com/coding/v1"
    assert chat.resolve("openrouter/a/b")[2] == "https://openrouter.ai/api/v1"


def test_tiers_resolve_to_configured_ids() -> None:
    chat = make()
    assert chat.resolve("tier:local_fast") == ("ollama", "qwen3:4b", "http://127.0.0.1:9")
    assert chat.resolve("tier:cloud_judge")[:2] == ("ollama_cloud", "gpt-oss:120b")
    assert chat.resolve("tier:frontier_review")[:2] == ("openrouter", "anthropic/claude-sonnet-4")
    assert chat.resolve("tier:alias")[:2] == ("ollama", "qwen3:8b")
    assert chat.table.candidates("tier:local_fast") == ["ollama/qwen3:4b", "ollama/llama3.2:3b", "qwen3:8b"]


def test_unknown_tier_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        make().resolve("tier:nope")
    msg = str(info.value)
    assert "nope" in msg
    for tier in ("local_fast", "local_judge", "cloud_judge", "frontier_review"):
        assert tier in msg
    assert "weak_patterns" not in msg and info.value.status == 400


def test_bad_strength_patterns_fail_when_the_lake_opens(tmp_path: Path) -> None:
    """The downgrade gate's [models] weak/strong globs are configuration: checked at open, not per request."""
    for bad in ("ollama/*", ["ok*", 3]):
        with pytest.raises(SettingsError, match=r"\[models\] weak must be a list of glob patterns"):
            lakehouse.open(tmp_path / "lake", embedder="hash", models={"weak": bad})
    assert make(models={"strong": ["my-*"]}).table.strong == ("my-*",)


def test_tier_loops_are_refused() -> None:
    with pytest.raises(InvalidInput, match="loop"):
        make(models={"a": "tier:b", "b": "tier:a"}).resolve("tier:a")


def test_bad_fallbacks_and_policy_are_settings_errors() -> None:
    with pytest.raises(SettingsError):
        make(models={"fallbacks": {"a": [1]}})
    with pytest.raises(SettingsError, match="retrys"):
        make(models={"policy": {"retrys": 1}})
    assert make(models={"policy": {"retries": 5, "cooldown_s": 1}}).policy == ChatPolicy(retries=5, cooldown_s=1.0)


def test_models_lists_tiers_and_ids() -> None:
    listed = make().models()
    assert listed[:3] == ["tier:local_fast", "ollama/qwen3:4b", "ollama/llama3.2:3b"]
    assert "tier:cloud_judge" in listed and "gpt-oss:120b:cloud" in listed
    assert "tier:weak_patterns" not in listed


def test_providers_report_configuration_never_keys() -> None:
    chat = make(env={"OPENROUTER_API_KEY": "sk-or-SECRET"})
    rows = {p["name"]: p for p in chat.providers()}
    assert set(rows) == {"ollama", "ollama_cloud", "openrouter", "opencode", "kimi"}
    assert rows["ollama"]["configured"] and rows["ollama"]["key_env"] is None
    assert rows["openrouter"]["configured"] and rows["openrouter"]["key_env"] == "OPENROUTER_API_KEY"
    assert not rows["kimi"]["configured"] and rows["kimi"]["key_env"] == "KIMI_API_KEY"
    assert "SECRET" not in repr(rows)


def test_provider_without_key_is_not_configured() -> None:
    chat = make()
    with pytest.raises(ProviderNotConfigured) as info:
        chat.chat("kimi/k2", prompt="hi")
    exc = info.value
    assert exc.status == 503 and exc.code == "provider_not_configured"
    assert "KIMI_API_KEY" in str(exc) and exc.to_dict()["key_env"] == "KIMI_API_KEY"


# -- keys ------------------------------------------------------------------------------------


def test_parse_dotenv_handles_export_quotes_and_comments() -> None:
    text = """
# a comment
export OPENROUTER_API_KEY="sk-or-1"
KIMI_API_KEY='sk-kimi # not a comment'
OPENCODE_API_KEY=sk-oc   # trailing comment
not a line
EMPTY=
"""
    assert parse_dotenv(text) == {
        "OPENROUTER_API_KEY": "sk-or-1",
        "KIMI_API_KEY": "sk-kimi # not a comment",
        "OPENCODE_API_KEY": "sk-oc",
        "EMPTY": "",
    }


def write_keys(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_env_beats_key_file(tmp_path: Path) -> None:
    kf = write_keys(tmp_path / ".env", "OPENROUTER_API_KEY=from-file\nKIMI_API_KEY=kimi-from-file\n")
    ring = KeyRing(KEY_VARS, {"OPENROUTER_API_KEY": "from-env", "KIMI_API_KEY": ""}, str(kf))
    assert ring.get("OPENROUTER_API_KEY") == "from-env"
    assert ring.get("KIMI_API_KEY") == "kimi-from-file"  # empty in env counts as unset
    assert ring.get("OPENCODE_API_KEY") is None


def test_dispatcher_reads_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCODE_API_KEY", "sk-oc-env")
    chat = ChatDispatcher(Settings.load(env={}, key_file=""))
    assert {p["name"]: p["configured"] for p in chat.providers()}["opencode"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    kf = write_keys(tmp_path / ".env", "OPENROUTER_API_KEY=sk-or-SECRET\n", mode)
    with pytest.raises(Forbidden) as info:
        read_key_file(kf)
    assert str(kf) in str(info.value) and "chmod 600" in str(info.value)
    assert info.value.status == 403 and "SECRET" not in str(info.value)


def test_dispatcher_with_unsafe_key_file_still_opens(tmp_path: Path) -> None:
    kf = write_keys(tmp_path / ".env", "OPENROUTER_API_KEY=sk-or-SECRET\n", 0o644)
    chat = make(key_file=str(kf))
    assert chat.resolve("ollama/m")[0] == "ollama"
    with pytest.raises(ProviderNotConfigured) as info:
        chat.chat("openrouter/a/b", prompt="hi")
    msg = str(info.value)
    assert "OPENROUTER_API_KEY" in msg and "chmod 600" in msg and "SECRET" not in msg


def test_missing_key_file_is_fine(tmp_path: Path) -> None:
    assert read_key_file(tmp_path / "absent.env") == {}
    chat = make(key_file=str(tmp_path / "absent.env"))
    assert not {p["name"]: p["configured"] for p in chat.providers()}["openrouter"]


def test_key_file_configures_provider(tmp_path: Path) -> None:
    kf = write_keys(tmp_path / ".env", "export KIMI_API_KEY='sk-kimi'\n")
    chat = make(key_file=str(kf))
    assert {p["name"]: p["configured"] for p in chat.providers()}["kimi"]


# -- inputs ----------------------------------------------------------------------------------


def test_messages_prompt_and_system_combine() -> None:
    msgs = build_messages([ChatMessage("user", "a"), {"role": "assistant", "content": "b"}], "c", "sys")
    assert msgs == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"system": "only a system prompt"},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"messages": "a string"},
        {"prompt": "x", "temperature": 3},
        {"prompt": "x", "max_tokens": 0},
        {"prompt": "x", "timeout_s": -1},
    ],
)
def test_bad_inputs_are_invalid_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        make().chat("ollama/m", **kwargs)  # type: ignore[arg-type]

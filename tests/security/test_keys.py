"""Issue 17, item 3: keys never leak. Keys are stripped and checked when loaded (a bad one is refused naming the
variable, never the value); every representation of a key, and URL credentials, are scrubbed from errors, logs
and recorded ops."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from llm_servers import LLMServer, provider_settings

import lakehouse
from lakehouse.errors import ProviderError, ProviderNotConfigured

KEY = "sk-or-v1-5f2a9c0d71e84b3aa6c9f00d2e7b41cd"


def _everything(lake: lakehouse.Lake, caplog: pytest.LogCaptureFixture, *texts: str) -> str:
    lake.observer.flush()
    files = "".join(p.read_text() for p in (lake.root / "observer").glob("*.jsonl"))
    journal = "".join(p.read_text() for p in (lake.root / "_errors").glob("*.jsonl"))
    return "\n".join([files, journal, caplog.text, *texts])


def test_a_trailing_newline_is_stripped_and_the_key_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY + "\n")  # a mounted secret's file ends with one
    with LLMServer() as llm, lakehouse.open(tmp_path / "lake", embedder="hash", **provider_settings(llm.url)) as lake:
        assert lake.chat("openrouter/v/m", prompt="hi").content == "echo: hi"
        assert llm.requests[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("bad", [KEY[:10] + "\n" + KEY[10:], KEY + "\x1b", "sk-ünïcode-key-0123456789", "sk key 0123"])
def test_a_malformed_key_is_refused_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture, bad: str) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENROUTER_API_KEY", bad)
    with LLMServer() as llm, lakehouse.open(tmp_path / "lake", embedder="hash", **provider_settings(llm.url)) as lake:
        with pytest.raises(ProviderNotConfigured) as info:
            lake.chat("openrouter/v/m", prompt="hi")
        assert "OPENROUTER_API_KEY" in info.value.message and info.value.status == 503
        assert not llm.requests  # nothing was sent with it
        text = _everything(lake, caplog, str(info.value), json.dumps(info.value.to_dict()))
        assert bad.strip() not in text and bad.strip()[:12] not in text


def test_every_representation_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    forms = [KEY, json.dumps(KEY), quote(KEY, safe=""), base64.b64encode(f"user:{KEY}".encode()).decode(),
             base64.b64encode(KEY.encode()).decode(), KEY[:14] + "...", repr(KEY.encode())]
    with LLMServer() as llm, lakehouse.open(tmp_path / "lake", embedder="hash", **provider_settings(llm.url)) as lake:
        llm.fail(401, {"error": {"message": "bad credentials: " + " | ".join(forms)}})
        with pytest.raises(ProviderError) as info:
            lake.chat("openrouter/v/m", prompt="hi")
        with pytest.raises(Exception) as sql_info:  # noqa: B017 - the key as user SQL text: echoed by DuckDB
            lake.query(f"SELECT * FROM \"{KEY}\"")
        text = _everything(lake, caplog, str(info.value), json.dumps(info.value.to_dict()), str(sql_info.value))
    assert "bad credentials" in text
    for form in forms:
        core = form.strip('"').removesuffix("...")
        assert core[:12] not in text, form


def test_credentials_in_a_base_url_are_scrubbed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base = "http://admin:hunter2-PASSWORD@127.0.0.1:9/v1"  # nothing listens on port 9
    with lakehouse.open(tmp_path / "lake", embedder="hash", ollama_base=base) as lake:
        with pytest.raises(ProviderError) as info:
            lake.chat("ollama/m", prompt="hi")
        text = _everything(lake, caplog, str(info.value), json.dumps(info.value.to_dict()))
    assert "hunter2" not in text and "admin:" not in text and "http://***@127.0.0.1:9" in str(info.value)

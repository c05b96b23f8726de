"""Shared fixtures: a clean environment and a fresh lake per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import lakehouse

_PROVIDER_KEYS = ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY")


@pytest.fixture(autouse=True, scope="session")
def clean_environ() -> Iterator[None]:
    """No LH_* setting or provider key leaks in from the machine running the tests. Session-wide,
    so module-scoped lakes and servers see the clean environment too; tests set variables with
    `monkeypatch`, which restores them."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LH_") or name in _PROVIDER_KEYS or name.endswith("_API_KEY"):
                mp.delenv(name)
        yield


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    lk = lakehouse.open(tmp_path / "lake")
    try:
        yield lk
    finally:
        lk.close()


@pytest.fixture
def write(tmp_path: Path):
    """write("name.csv", "text") -> Path of a file under tmp_path/files."""
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)

    def _write(name: str, content: str | bytes) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return _write

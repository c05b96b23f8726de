"""Fixtures for the tests of workflows over the operations catalog: a real lake (the hash embedder) whose
chat providers all live on the module's loopback LLM server (tests/llm_servers.py), and the same lake
served over HTTP on loopback.

    from llm_servers import llm_fixture, srv_fixture  # noqa: F401
    from workflow_lakes import wlake_fixture, whttp_fixture  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hash_lake import served
from llm_servers import LLMServer, provider_settings

import lakehouse

# tiers the shipped workflows use; every model is local Ollama on the loopback server (no key needed)
MODELS = {
    "knowledge": "ollama/knowledge",
    "review_a": "ollama/reviewer-a", "review_b": "ollama/reviewer-b", "review_c": "ollama/reviewer-c",
    "local_fast": "ollama/local", "cloud_judge": "ollama/cloud", "frontier_review": "ollama/frontier",
    "policy": {"retries": 0, "cooldown_failures": 0, "timeout_s": 30},  # a failure now, not after retries
}


def open_lake(root: Path, srv: LLMServer, **settings: object) -> lakehouse.Lake:
    return lakehouse.open(root, **{"embedder": "hash", "models": MODELS, **provider_settings(srv.url), **settings})


@pytest.fixture(name="wlake")
def wlake_fixture(tmp_path: Path, srv: LLMServer) -> Iterator[lakehouse.Lake]:
    with open_lake(tmp_path / "lake", srv) as lake:
        yield lake


@pytest.fixture(name="whttp")
def whttp_fixture(wlake: lakehouse.Lake) -> Iterator[httpx.Client]:
    with served(wlake) as client:
        yield client

"""The `target` fixture: one lake worth attacking per test module (secured_lake.Target)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from http_server import LiveServer
from secured_lake import WORKERS, Target

import lakehouse
from lakehouse.http import create_app


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("secured") / "lake"
    root.mkdir()
    (root / "lakehouse.toml").write_text('embedder = "hash"\n')
    with lakehouse.open(root) as lake:
        lake.ingest(WORKERS, "workers", filename="workers.csv")
        lake.create_corpus("wc", dataset="workers", text="role", metadata=["state"])
        staging = root / "staging"
        staging.mkdir(exist_ok=True)
        (staging / "upload.csv").write_text("secret,staged\n1,2\n")
        lake.observer.flush()
        places = {
            "root": str(root), "catalog": str(root / "catalog.sqlite"), "data": lake.location.data_path,
            "staged": str(staging / "upload.csv"), "sidecar": str(next((root / "indexes").rglob("*.usearch"))),
            "toml": str(root / "lakehouse.toml"), "observer": str(next((root / "observer").glob("ops-*.jsonl"))),
        }
        with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield Target(lake, http, places)

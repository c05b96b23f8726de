"""HTTP matrix routes against a real server on loopback."""

from __future__ import annotations

import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.http import create_app


@pytest.fixture
def http(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", playbook_threshold=0.5) as lake:
        lake.create_corpus("workers", rows=[
            {"id": 1, "text": "forklift operator OSHA-10 Joliet IL", "metadata": {"state": "IL"}},
            {"id": 2, "text": "forklift operator Milwaukee WI", "metadata": {"state": "WI"}},
            {"id": 3, "text": "pastry chef Madison WI", "metadata": {"state": "WI"}}])
        lake.create_corpus("candidates", rows=[
            {"id": "c1", "text": "candidate forklift operator Chicago IL", "metadata": {"state": "IL"}}])
        with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as client:
            yield client


def test_matrix_search_shape_and_filters(http):
    body = http.post("/v1/matrix/search", json={"query": "forklift operator", "corpora": ["workers", "candidates"],
                                                "metadata_filter": {"state": "IL"}, "relevance": False}).json()
    assert set(body) >= {"mode", "results", "dropped", "elapsed_ms"}
    assert {r["corpus"] for r in body["results"]} == {"workers", "candidates"}
    assert all(set(r) >= {"rank", "corpus", "id", "score", "text", "metadata", "source"} for r in body["results"])
    assert all(r["metadata"]["state"] == "IL" for r in body["results"])
    assert body["dropped"]["metadata_filter_rows"] == 2 and body["dropped"]["relevance"] == []
    listing = http.get("/v1/matrix/corpora").json()["corpora"]
    assert {(c["name"], c["rows"], c["active_generation"]) for c in listing} == {("workers", 3, 1), ("candidates", 1, 1)}


def test_relevance_route(http):
    body = http.post("/v1/matrix/relevance", json={"query": "forklift operator", "candidates": [
        {"id": "a", "text": "forklift operator wanted"}, {"id": "b", "text": "pastry chef"}]}).json()
    assert [c["id"] for c in body["kept"]] == ["a"]
    assert [c["id"] for c in body["dropped"]] == ["b"] and "below the threshold" in body["dropped"][0]["reason"]


def test_playbook_routes(http):
    one = http.post("/v1/matrix/playbooks/record", json={"query": "forklift operator", "corpus": "workers",
                                                         "answer_id": 3, "outcome": 1})
    assert one.status_code == 201 and one.json()["recorded"] == 1
    bulk = http.post("/v1/matrix/playbooks/bulk", json={"entries": [
        {"query": "baker", "corpus": "workers", "answer_id": 3}, {"query": ""}]}).json()
    assert (bulk["recorded"], bulk["failed"]) == (1, 1) and "error" in bulk["results"][1]
    found = http.get("/v1/matrix/playbooks", params={"query": "forklift operator", "k": 1}).json()["results"]
    assert found[0]["answer_id"] == "3" and found[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    body = http.post("/v1/matrix/search", json={"query": "forklift operator", "corpora": ["workers"],
                                                "k_per_corpus": 2, "use_playbook": True, "relevance": False}).json()
    assert any(r["id"] == "3" and r["source"] == "playbook" for r in body["results"])

"""HTTP vector routes against a real server on loopback."""

from __future__ import annotations

import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.http import create_app

WORKERS = b"""id,name,role,state
1,Ann,Forklift Operator OSHA-10,IL
2,Bob,Pastry Chef,WI
3,Cy,Forklift Operator,WI
4,Di,Registered Nurse,IL
5,Ed,Forklift Driver OSHA-10,IL
"""


@pytest.fixture
def http(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", rebuild_interval_s=0) as lake:
        lake.ingest(WORKERS, "workers", filename="workers.csv")
        with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as client:
            yield client


def test_embed(http):
    body = http.post("/v1/embed", json={"texts": ["forklift", "nurse"]}).json()
    assert body["embedder"] == "hash" and body["dim"] == 384 and len(body["embeddings"]) == 2
    assert len(body["embeddings"][0]) == 384
    body = http.post("/v1/embed", json={"texts": ["x"], "embedder": "hash:16"}).json()
    assert body["dim"] == 16


def test_corpus_lifecycle_and_search(http):
    resp = http.post("/v1/corpora", json={"name": "workers", "dataset": "workers", "text": ["role", "state"],
                                          "metadata": ["state"]})
    assert resp.status_code == 201, resp.text
    assert resp.json()["rows"] == 5 and resp.json()["active_generation"] == 1
    listing = http.get("/v1/corpora").json()["corpora"]
    assert [c["name"] for c in listing] == ["workers"]

    res = http.post("/vectors/search", json={"corpus": "workers", "query": "forklift operator OSHA-10 IL", "k": 2})
    results = res.json()["results"]
    assert [r["rank"] for r in results] == [1, 2]
    assert results[0]["row"]["name"] == "Ann" and set(results[0]) >= {"id", "score", "rank", "row"}
    vec = http.post("/v1/embed", json={"texts": ["forklift operator OSHA-10 IL"]}).json()["embeddings"][0]
    by_vec = http.post("/vectors/search", json={"corpus": "workers", "vector": vec, "k": 2}).json()["results"]
    assert [r["id"] for r in by_vec] == [r["id"] for r in results]

    assert http.post("/v1/corpora/workers/rebuild").json()["generation"] == 2
    assert http.post("/v1/corpora/workers/rollback").json()["generation"] == 1
    assert http.post("/v1/corpora/workers/rollback", json={"generation": 2}).json()["generation"] == 2


def test_hybrid_where_matches_the_sql_form(http):
    http.post("/v1/corpora", json={"name": "workers", "dataset": "workers", "text": "role"}).raise_for_status()
    body = http.post("/vectors/hybrid", json={"corpus": "workers", "query": "forklift operator", "k": 10,
                                              "where": "state = 'IL' AND name <> 'Ed'"}).json()
    assert [r["row"]["state"] for r in body["results"]] == ["IL", "IL"]
    sql = ("SELECT v.id FROM vector_search('workers', 'forklift operator', 10, "
           "ids := (SELECT list(id) FROM workers WHERE state = 'IL' AND name <> 'Ed')) v ORDER BY v.rank")
    rows = http.post("/sql", json={"sql": sql}).json()["rows"]
    assert [r[0] for r in rows] == [r["id"] for r in body["results"]]


def test_corpus_from_sql(http):
    resp = http.post("/v1/corpora", json={"name": "roles", "sql": "SELECT DISTINCT role AS id, role AS text FROM workers"})
    assert resp.status_code == 201, resp.text
    results = http.post("/vectors/search", json={"corpus": "roles", "query": "nurse", "k": 1}).json()["results"]
    assert results[0]["id"] == "Registered Nurse" and results[0]["text"] == "Registered Nurse"

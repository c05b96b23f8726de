"""Issue 17, item 5: limits that hold for every caller. The query timeout bounds all caller SQL (a query, a
corpus definition, a hybrid `where`, `chat()` in SQL against a silent model); a timeout that would switch the
timer off is refused; responses and SQL texts have sizes; disk does not grow with rebuilds or crashes; remote
rebuilds are rate-limited."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer
from llm_servers import LLMServer, provider_settings

import lakehouse
from lakehouse.errors import InvalidInput, QueryTimeout, SettingsError
from lakehouse.http import create_app

SLOW = "SELECT count(*) FROM range(200000000) a, range(1000) b WHERE a.range * b.range = -1"  # minutes, unbounded
PEOPLE = b"id,name,state\n" + b"".join(b"%d,name %d,IL\n" % (i, i) for i in range(100_000))
# 6e7 list elements per vector of 2,048 rows (DuckDB checks for an interrupt between vectors; ~0.5 s here),
# 3e9 in all (~30 s here): longer than the limits below on a much faster machine, one vector well under 10 s
SLOW_WHERE = "list_sum(list_transform(range(0, 30000), x -> x * id)) >= 0"


@pytest.fixture(scope="module")
def llm() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, llm: LLMServer) -> Iterator[lakehouse.Lake]:
    root = tmp_path_factory.mktemp("limits") / "lake"
    with lakehouse.open(root, embedder="hash", query_timeout_s=1, max_sql_chars=500, max_response_mb=1,
                        rebuild_interval_s=600, **provider_settings(llm.url)) as lk:
        lk.ingest(PEOPLE, "people", filename="people.csv")
        lk.create_corpus("people_c", dataset="people", text="name", metadata=["state"])
        yield lk


@pytest.fixture(scope="module")
def url(lake: lakehouse.Lake) -> Iterator[str]:
    with LiveServer(create_app(lake), threads=4) as base:
        yield base


def _timed_out(call: object) -> float:
    t0 = time.perf_counter()
    with pytest.raises(QueryTimeout, match="query_timeout_s"):
        call()  # type: ignore[operator]
    return time.perf_counter() - t0


def test_the_query_timeout_bounds_every_callers_sql(lake: lakehouse.Lake) -> None:
    assert _timed_out(lambda: lake.query(SLOW)) < 10
    assert _timed_out(lambda: lake.create_corpus("slow", sql=SLOW, text="x")) < 10
    assert "slow" not in [c["name"] for c in lake.corpora()]  # nothing half-made
    assert _timed_out(lambda: lake.ops.call("vectors.hybrid", corpus="people_c", query="name", where=SLOW_WHERE,
                                            k=3)) < 10
    hit = lake.ops.call("vectors.hybrid", corpus="people_c", query="name 7", where="id = 7", k=3)["results"]
    assert [h["id"] for h in hit] == ["7"]
    # the filter alone outlasts 3 s, so the 1 s above was the limit at work
    assert _timed_out(lambda: lake.ops.call("sql.query", sql=f"SELECT count(*) FROM people WHERE {SLOW_WHERE}",
                                            timeout_s=3)) >= 3


def test_chat_in_sql_stops_at_the_query_timeout_not_the_models(lake: lakehouse.Lake, llm: LLMServer) -> None:
    llm.reset()
    llm.delay_s = 30  # a model that never answers in time
    try:
        assert _timed_out(lambda: lake.query("SELECT chat('ollama/qwen3:4b', 'hi') AS a")) < 10
    finally:
        llm.reset()
    assert lake.query("SELECT chat('ollama/qwen3:4b', 'hi') AS a").rows == [["echo: hi"]]


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf])
def test_a_timeout_that_would_switch_the_timer_off_is_refused(lake: lakehouse.Lake, tmp_path: Path,
                                                               value: float) -> None:
    with pytest.raises(InvalidInput) as err:
        lake.ops.call("sql.query", sql="SELECT 1", timeout_s=value)
    assert "timeout_s" in err.value.message
    with pytest.raises(InvalidInput) as err:
        lake.ops.call("chat", model="ollama/qwen3:4b", prompt="hi", timeout_s=value)
    assert "timeout_s" in err.value.message
    with pytest.raises(SettingsError, match="query_timeout_s"):
        lakehouse.open(tmp_path / f"lake{value}", embedder="hash", query_timeout_s=value)


@pytest.mark.parametrize("value", [0, -1, "1e400"])
def test_a_timeout_over_http_that_would_switch_the_timer_off_is_a_400(url: str, value: object) -> None:
    body = f'{{"sql": "SELECT 1", "timeout_s": {value}}}'  # 1e400 parses as infinity
    resp = httpx.post(url + "/sql", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400 and "timeout_s" in resp.json()["error"]["message"], resp.text


def test_a_large_result_is_a_413_and_the_server_goes_on(url: str) -> None:
    resp = httpx.post(url + "/sql", json={"sql": "SELECT repeat('x', 600000) AS a FROM range(4)"}, timeout=60)
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert err["code"] == "response_too_large" and "max_response_mb" in err["message"]
    ok = httpx.post(url + "/sql", json={"sql": "SELECT repeat('x', 1000) AS a"}, timeout=30)
    assert ok.status_code == 200 and len(ok.json()["rows"][0][0]) == 1000


@pytest.mark.parametrize(("path", "body"), [
    ("/sql", {"sql": "SELECT 1" + " " * 600}),
    ("/v1/corpora", {"name": "long", "sql": "SELECT 1 AS id, 'a' AS text" + " " * 600, "text": "text"}),
    ("/vectors/hybrid", {"corpus": "people_c", "query": "x", "where": "id > 0" + " " * 600}),
    ("/v1/truth/check", {"rules": "# " + "x" * 600}),
])
def test_sql_longer_than_max_sql_chars_is_a_400_naming_the_limit(url: str, path: str, body: dict[str, object]) -> None:
    resp = httpx.post(url + path, json=body, timeout=30)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "sql_too_long" and "max_sql_chars" in err["message"]


def test_remote_rebuilds_are_rate_limited_and_never_queue(lake: lakehouse.Lake, url: str) -> None:
    lake.create_corpus("rebuilt", rows=[{"id": i, "text": f"row {i}"} for i in range(50)])  # built just now
    resp = httpx.post(url + "/v1/corpora/rebuilt/rebuild", json={}, timeout=60)
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "rebuild_too_soon" and "rebuild_interval_s" in resp.json()["error"]["message"]
    state = lake.vectors.state("rebuilt")
    assert state.lock.acquire(timeout=30)  # a build in progress
    try:
        resp = httpx.post(url + "/v1/corpora/rebuilt/rebuild", json={}, timeout=60)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "rebuild_in_progress", resp.text
    finally:
        state.lock.release()
    generations = lake.sql("SELECT count(*) FROM lake.lh.index_generations WHERE corpus = 'rebuilt'").fetchone()[0]
    assert lake.rebuild_index("rebuilt")["generation"] == generations + 1  # this machine's Python is not limited


def test_only_keep_generations_index_files_stay_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with lakehouse.open(root, embedder="hash", keep_generations=2) as lake:
        lake.create_corpus("c", rows=[{"id": i, "text": f"row {i}"} for i in range(30)])
        for _ in range(5):
            lake.rebuild_index("c")
        lake.rollback_index("c")
        kept = lake.sql("SELECT generation, path FROM lake.lh.index_generations WHERE corpus = 'c' "
                        "ORDER BY generation").fetchall()
        assert len(kept) == 2
        files = sorted(p for p in (root / "indexes").rglob("*.usearch"))
        assert files == sorted(Path(p) for _, p in kept)
        assert lake.vector_search("c", "row 7", 1)[0].id == "7"


def test_what_a_crash_leaves_is_removed_on_open_and_what_is_young_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with lakehouse.open(root, embedder="hash") as lake:
        lake.ingest(b"id,name\n1,Ann\n", "people", filename="p.csv")
        lake.create_corpus("c", rows=[{"id": 1, "text": "one"}])
        data = Path(lake.location.data_path)
    old = time.time() - 7200
    staged_old, staged_new = root / "staging" / "killed-upload.csv", root / "staging" / "in-flight.csv"
    sidecar_dir = next((root / "indexes").iterdir())
    tmp_sidecar, stray = sidecar_dir / "gen-9.usearch.tmp", sidecar_dir / "gen-99.usearch"
    orphan = data / "main" / "people" / "ducklake-killed-write.parquet"
    for path in (staged_old, staged_new, tmp_sidecar, stray, orphan):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a crash")
    for path in (staged_old, tmp_sidecar, stray, orphan):
        os.utime(path, (old, old))
    with lakehouse.open(root, embedder="hash") as lake:
        assert not staged_old.exists() and not tmp_sidecar.exists() and not stray.exists() and not orphan.exists()
        assert staged_new.exists()  # may be another process's upload in flight
        assert lake.query("SELECT name FROM people").rows == [["Ann"]]
        assert lake.vector_search("c", "one", 1)[0].id == "1"

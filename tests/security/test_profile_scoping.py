"""Profile A cannot read profile B's tables or corpora, by any route: SQL in every position (direct, view, CTE,
UNION, subqueries, lateral join, the engine's macros, catalog listings), the vector, hybrid, matrix and RAG routes,
playbooks, dataset and corpus listings, and the observer. Each over a real HTTP server on loopback with A's key
(and MCP for a few); each refusal is checked beside the same route working for A's own data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_server import LiveServer
from llm_servers import LLMServer, llm_fixture, provider_settings, srv_fixture  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.http import create_app

sys.path.insert(0, str(Path(__file__).parents[1]))
from profile_lake import Tenants, build, client, error  # noqa: E402


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, llm: LLMServer) -> Iterator[tuple[Tenants, str]]:
    lake = lakehouse.open(tmp_path_factory.mktemp("profiles") / "lake", embedder="hash", auth="required",
                          rebuild_interval_s=0, **provider_settings(llm.url))
    try:
        t = build(lake)
        with LiveServer(create_app(lake)) as url:
            yield t, url
    finally:
        lake.close()


@pytest.fixture
def a(tenants: tuple[Tenants, str]) -> Iterator[Any]:
    t, url = tenants
    with client(url, t.keys["a"]) as c:
        yield c


# Every statement reads B's data (or lists the lake) in another position; A's own version of each must work.
REFUSED_SQL = {
    "direct": "SELECT * FROM b_sales",
    "qualified": "SELECT * FROM lake.main.b_sales",
    "view": "SELECT * FROM a_leak",
    "cte": "WITH x AS (SELECT * FROM b_sales) SELECT * FROM x",
    "union": "SELECT * FROM a_sales UNION ALL SELECT * FROM b_sales",
    "in_subquery": "SELECT * FROM a_sales WHERE id IN (SELECT id FROM b_sales)",
    "scalar_subquery": "SELECT (SELECT max(text) FROM b_sales) AS t",
    "lateral": "SELECT * FROM a_sales, LATERAL (SELECT text FROM b_sales WHERE b_sales.id = a_sales.id)",
    "exists": "SELECT 1 WHERE EXISTS (SELECT 1 FROM b_sales)",
    "describe": "DESCRIBE SELECT * FROM b_sales",
    "explain": "EXPLAIN SELECT * FROM b_sales",
    "corpus_table": "SELECT * FROM lake.lh_corpus.b_docs",
    "engine_table": "SELECT * FROM lh.profiles",
    "merge_parts": "SELECT * FROM lh_store.a_sales__base",
    "vector_search_macro": "SELECT * FROM vector_search('b_docs', 'secret', 3)",
    "text_search_macro": "SELECT * FROM text_search('b_docs', 'secret', 3)",
    "matrix_macro": "SELECT * FROM matrix_search('secret', corpora := ['b_docs'])",
    "dataset_macro": "SELECT lakehouse_dataset('b_sales')",
    "show_tables": "SHOW TABLES",
    "snapshots": "SELECT * FROM ducklake_snapshots('lake')",
    "observer_ops_macro": "SELECT * FROM observer_ops()",
}
ALLOWED_SQL = {
    "direct": "SELECT * FROM a_sales",
    "cte": "WITH x AS (SELECT * FROM a_sales) SELECT * FROM x",
    "union": "SELECT * FROM a_sales UNION ALL SELECT * FROM lake.main.a_sales",
    "scalar_subquery": "SELECT (SELECT max(text) FROM a_sales) AS t",
    "describe": "DESCRIBE SELECT * FROM a_sales",
    "corpus_table": "SELECT count(*) FROM lake.lh_corpus.a_docs",
    "vector_search_macro": "SELECT * FROM vector_search('a_docs', 'forklift', 3)",
    "matrix_macro": "SELECT * FROM matrix_search('forklift', corpora := ['a_docs'], relevance := false)",
}


def _sql_body(sql: str, when: str, tenants: tuple[Tenants, str]) -> dict[str, Any]:
    """A /sql body reading the latest lake, or (`at_snapshot`) the snapshot of the last change."""
    if when == "latest":
        return {"sql": sql}
    return {"sql": sql, "at_snapshot": tenants[0].lake.journal(limit=1)[0]["snapshot_id"]}


@pytest.mark.parametrize("when", ["latest", "at_snapshot"])
@pytest.mark.parametrize("name", sorted(REFUSED_SQL))
def test_sql_cannot_reach_the_other_profile(a: Any, tenants: tuple[Tenants, str], name: str, when: str) -> None:
    """`at_snapshot` reads on a sandboxed instance of its own, whose views the check reads through: scoped the same."""
    resp = a.post("/sql", json=_sql_body(REFUSED_SQL[name], when, tenants))
    assert resp.status_code == 403, resp.text
    assert error(resp)["code"] == "profile_forbidden"
    assert "secret" not in resp.text


@pytest.mark.parametrize("sql", ["SELECT * FROM information_schema.tables", "SELECT * FROM duckdb_tables()",
                                 "SELECT * FROM duckdb_views()", "SELECT * FROM sqlite_master"])
def test_catalog_listings_are_refused_to_everyone(a: Any, sql: str) -> None:
    resp = a.post("/sql", json={"sql": sql})
    assert resp.status_code == 403 and error(resp)["code"] in ("relation_not_allowed", "function_not_allowed")


@pytest.mark.parametrize("when", ["latest", "at_snapshot"])
@pytest.mark.parametrize("name", sorted(ALLOWED_SQL))
def test_the_same_sql_over_its_own_data_works(a: Any, tenants: tuple[Tenants, str], name: str, when: str) -> None:
    resp = a.post("/sql", json=_sql_body(ALLOWED_SQL[name], when, tenants))
    assert resp.status_code == 200, resp.text
    assert "secret" not in resp.text


def test_listings_show_only_the_profile(a: Any) -> None:
    assert [d["name"] for d in a.get("/datasets").json()["datasets"]] == ["a_sales"]
    assert [c["name"] for c in a.get("/v1/corpora").json()["corpora"]] == ["a_docs"]
    rows = a.post("/sql", json={"sql": "SELECT name FROM lakehouse_datasets()"}).json()["rows"]
    assert rows == [["a_sales"]]
    assert a.get("/datasets/b_sales").status_code == 403
    assert a.get("/datasets/a_sales").status_code == 200
    assert a.get("/v1/corpora/b_docs").status_code == 403


@pytest.mark.parametrize(("path", "body"), [
    ("/vectors/search", {"corpus": "b_docs", "query": "secret", "k": 3}),
    ("/vectors/hybrid", {"corpus": "b_docs", "query": "secret", "k": 3, "where": "id > 0"}),
    ("/v1/text/search", {"corpus": "b_docs", "query": "secret", "k": 3}),
    ("/v1/matrix/search", {"query": "secret", "corpora": ["a_docs", "b_docs"]}),
    ("/rag", {"question": "what is secret?", "corpora": "b_docs"}),
])
def test_search_routes_refuse_the_other_corpus(a: Any, path: str, body: dict[str, Any]) -> None:
    resp = a.post(path, json=body)
    assert resp.status_code == 403 and error(resp)["code"] == "profile_forbidden", resp.text
    own = {**body, **({"corpus": "a_docs"} if "corpus" in body else {}),
           **({"corpora": ["a_docs"]} if "corpora" in body else {})}
    assert a.post(path, json=own).status_code == 200


def test_default_corpora_are_the_profiles(a: Any, srv: Any) -> None:
    out = a.post("/v1/matrix/search", json={"query": "secret forklift plan", "relevance": False,
                                            "use_playbook": True}).json()
    assert out["corpora"] == ["a_docs"] and out["results"]
    assert {h["corpus"] for h in out["results"]} == {"a_docs"} and "secret" not in str(out)
    rag = a.post("/rag", json={"question": "forklift operator in Chicago", "model": "ollama/qwen3:4b"}).json()
    assert rag["corpora"] == ["a_docs"] and rag["citations"]
    assert {c["corpus"] for c in rag["citations"]} == {"a_docs"}
    prompt = str(srv.requests[-1].body)
    assert "secret" not in prompt and "playbook answer of b" not in prompt


def test_playbooks_are_scoped(a: Any) -> None:
    found = a.get("/v1/matrix/playbooks", params={"query": "forklift"}).json()["results"]
    assert {e["corpus"] for e in found} == {"a_docs"}
    rows = a.post("/sql", json={"sql": "SELECT corpus FROM playbook_lookup('forklift', 10)"}).json()["rows"]
    assert rows == [["a_docs"]]


def test_read_profile_cannot_write(a: Any, tenants: tuple[Tenants, str]) -> None:
    attempts = [("delete", "/datasets/a_sales", None), ("post", "/v1/matrix/playbooks/bulk",
                {"entries": [{"query": "q", "corpus": "a_docs", "answer_id": "1", "outcome": 1}]}),
                ("post", "/v1/corpora/a_docs/rebuild", None), ("post", "/ingest", {"path": "x.csv", "dataset": "a_new"})]
    for method, path, body in attempts:
        resp = a.request(method.upper(), path, json=body)
        assert resp.status_code == 403 and error(resp)["code"] == "profile_forbidden", (path, resp.text)
    assert tenants[0].lake.dataset("a_sales")["rows"] == 3


def test_write_profile_writes_only_its_own(tenants: tuple[Tenants, str]) -> None:
    t, url = tenants
    with client(url, t.keys["a_write"]) as c:
        entry = {"query": "q", "corpus": "b_docs", "answer_id": "1", "outcome": 1}
        assert c.post("/v1/matrix/playbooks/bulk", json={"entries": [entry]}).status_code == 403
        assert c.delete("/datasets/b_sales").status_code == 403
        assert c.post("/v1/matrix/playbooks/bulk", json={"entries": [{**entry, "corpus": "a_docs"}]}).status_code == 200
    assert t.lake.dataset("b_sales")["rows"] == 3


def test_observer_shows_only_the_profiles_own_ops(tenants: tuple[Tenants, str]) -> None:
    t, url = tenants
    with client(url, t.keys["b"]) as b, client(url, t.keys["a"]) as a:
        assert b.post("/vectors/search", json={"corpus": "b_docs", "query": "secret", "k": 1}).status_code == 200
        a.post("/vectors/search", json={"corpus": "a_docs", "query": "forklift", "k": 1})
        mine = a.get("/v1/observer/ops", params={"limit": 1000}).json()["ops"]
        assert mine and {o["profile"] for o in mine} == {"a"}
        assert a.get("/v1/observer/stats").status_code == 403
    every = t.lake.observed_ops(limit=10_000)
    assert {"a", "b"} <= {o["profile"] for o in every}  # the owner sees both


def test_keys(tenants: tuple[Tenants, str]) -> None:
    _, url = tenants
    with client(url, None) as anon, client(url, "lh_not-a-key") as wrong:
        assert anon.get("/datasets").status_code == 401
        resp = wrong.get("/datasets")
        assert resp.status_code == 401 and error(resp)["code"] == "unauthorized" and "lh_not" not in resp.text


def test_profile_admin_has_no_remote_surface(a: Any, tenants: tuple[Tenants, str]) -> None:
    t, _ = tenants
    from lakehouse.engine.ops import entrance
    from lakehouse.errors import Forbidden

    with entrance("http"), pytest.raises(Forbidden) as info:
        t.lake.ops.call("profile.create", name="evil", datasets=["*"], corpora=["*"], access="write")
    assert info.value.code == "local_only"
    assert "key_sha256" not in str(t.lake.list_profiles())


def test_mcp_follows_the_key(tenants: tuple[Tenants, str]) -> None:
    pytest.importorskip("mcp")
    from mcp_client import call, http_target

    t, url = tenants
    target = http_target(url, {"Authorization": f"Bearer {t.keys['a']}"})
    listed = call(target, "list_datasets")
    assert not listed.is_error and "b_sales" not in str(listed.content) and "a_sales" in str(listed.content)
    refused = call(target, "vector_search", {"corpus": "b_docs", "query": "secret", "k": 3})
    assert refused.is_error and "profile_forbidden" in str(refused.content) and "secret" not in str(refused.content)
    sql = call(target, "sql_query", {"sql": "SELECT * FROM a_leak"})
    assert sql.is_error and "profile_forbidden" in str(sql.content)


@pytest.mark.parametrize("origin, fields, refused", [
    ("python", {}, False), ("cli", {}, False), ("workflow", {"initiator": "cli"}, False),
    ("http", {}, True), ("mcp", {}, True), ("ui", {}, True), ("sql", {}, True),
    ("workflow", {"initiator": "http"}, True), ("workflow", {"initiator": None}, True),
])
def test_a_local_only_op_is_refused_to_remote_callers_by_the_catalog(
        a: Any, tenants: tuple[Tenants, str], origin: str, fields: dict[str, Any], refused: bool) -> None:
    """`local_only` is a rule of Operations.call, not of each op's run function: an op that only declares it (and
    does not guard its own run) is still refused to every remote caller, before it runs."""
    from lakehouse.engine.ops import entrance
    from lakehouse.engine.ops.base import Catalog, Input, Op, Operations
    from lakehouse.errors import Forbidden

    ran: list[str] = []
    op = Op("owner.only", "an owner's op", Input, lambda lake, inp: ran.append(origin), local_only=True)
    ops = Operations(tenants[0].lake, Catalog([op]))
    with entrance(origin, **fields):
        if refused:
            with pytest.raises(Forbidden) as info:
                ops.call("owner.only")
            assert info.value.code == "local_only"
        else:
            ops.call("owner.only")
    assert ran == ([] if refused else [origin])

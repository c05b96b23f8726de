"""The MCP server over streamable HTTP at /mcp of the real HTTP app (waitress on loopback), with the SDK's client:
tools from the catalog, calls through the operations (recorded once, origin mcp), errors as tool errors with the
operation's code, resources, and the app's guards in front of it all."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_server import LiveServer, make_lake_fixture  # noqa: F401
from llm_servers import LLMServer, provider_settings
from mcp.shared.exceptions import MCPError
from mcp_client import call, http_target, session

import lakehouse
from lakehouse.engine.ops import CATALOG
from lakehouse.http import create_app
from lakehouse.mcp.tools import json_only, tool_name

CSV = b"id,name,role,state\n1,Ann,Forklift Operator,IL\n2,Bob,Pastry Chef,WI\n3,Cy,Welder,IL\n"


@dataclasses.dataclass
class Served:
    lake: lakehouse.Lake
    url: str
    base: Path
    llm: LLMServer

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> Any:
        return call(http_target(self.url), tool, arguments)

    def records(self, op: str) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.lake.observer.ops if o.op == op]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("mcp_http")
    (base / "imports").mkdir()
    (base / "imports" / "people.csv").write_bytes(CSV)
    (base / "outside").mkdir()
    (base / "outside" / "secret.csv").write_bytes(CSV)
    with LLMServer() as llm:
        lake = lakehouse.open(base / "lake", embedder="hash", import_dirs=[str(base / "imports")],
                              **provider_settings(llm.url))
        try:
            lake.ingest(CSV, "people", filename="people.csv")
            lake.create_corpus("people_c", dataset="people", text=["name", "role"], metadata=["state"])
            with LiveServer(create_app(lake)) as url:
                yield Served(lake, url, base, llm)
        finally:
            lake.close()


def _ok(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    value = json.loads(result.content[0].text)
    assert result.structured_content == (value if isinstance(value, dict) else {"result": value})
    return value


def _error(result: Any) -> dict[str, Any]:
    assert result.is_error
    body = json.loads(result.content[0].text)
    assert result.structured_content == body
    return body["error"]


def test_the_tools_are_the_catalog(served: Served) -> None:
    tools = {t.name: t for t in session(http_target(served.url), lambda c: c.list_tools()).tools}
    assert set(tools) == {tool_name(op.name) for op in CATALOG if not op.local_only}
    assert {"sql_query", "list_datasets", "describe_dataset", "vector_search", "hybrid_search", "matrix_search",
            "ask", "record_playbook", "ingest_path"} <= set(tools)
    for op in (op for op in CATALOG if not op.local_only):
        tool = tools[tool_name(op.name)]
        assert tool.description == op.description
        assert tool.input_schema == json_only(op.input.model_json_schema())
        assert tool.annotations.read_only_hint is (not op.writes)


def test_sql_query(served: Served) -> None:
    out = _ok(served.call("sql_query", {"sql": "SELECT name FROM people WHERE state = ? ORDER BY id", "params": ["IL"]}))
    assert out["rows"] == [["Ann"], ["Cy"]] and out["columns"][0]["name"] == "name"


def test_vector_hybrid_and_matrix_search(served: Served) -> None:
    hits = _ok(served.call("vector_search", {"corpus": "people_c", "query": "forklift operator", "k": 2}))
    assert hits[0]["id"] == "1" and hits[0]["rank"] == 1 and len(hits) == 2
    fused = _ok(served.call("hybrid_search", {"corpus": "people_c", "query": "forklift", "k": 1}))
    assert [h["id"] for h in fused] == ["1"]
    found = _ok(served.call("matrix_search", {"query": "forklift operator", "corpora": ["people_c"]}))
    assert found["results"][0]["corpus"] == "people_c" and found["results"][0]["id"] == "1"
    assert found["results"][0]["text"] == "Ann. Forklift Operator"


def test_ask_answers_through_the_llm_with_citations(served: Served) -> None:
    before = len(served.llm.requests)
    out = _ok(served.call("ask", {"question": "forklift operator", "corpora": "people_c", "model": "ollama/m"}))
    assert out["answered_by"] == "model" and out["model"] == "ollama/m"
    assert out["citations"] and out["citations"][0]["id"] == "1"
    assert len(served.llm.requests) == before + 1


def test_record_playbook_then_look_it_up(served: Served) -> None:
    entry = {"query": "night forklift shift", "corpus": "people_c", "answer_id": 1, "outcome": "success"}
    assert _ok(served.call("record_playbook", {"entries": [entry]}))["recorded"] == 1
    found = _ok(served.call("playbook_lookup", {"query": "night forklift shift", "k": 1}))["results"]
    assert found[0]["answer_id"] == "1" and found[0]["similarity"] > 0.99


def test_ingest_path_reads_only_inside_the_import_dirs(served: Served) -> None:
    out = _ok(served.call("ingest_path", {"source": "people.csv", "dataset": "mcp_inside"}))
    assert out["rows"] == 3 and out["dataset"] == "mcp_inside"
    for source in (str(served.base / "outside" / "secret.csv"), "../outside/secret.csv"):
        err = _error(served.call("ingest_path", {"source": source, "dataset": "mcp_outside"}))
        assert err["code"] == "path_outside_import_dirs", err
    names = {d["name"] for d in served.lake.datasets()}
    assert "mcp_inside" in names and "mcp_outside" not in names


def test_errors_are_tool_errors_with_the_operations_code(served: Served) -> None:
    assert _error(served.call("sql_query", {"sql": "DROP TABLE people"}))["code"] == "statement_not_allowed"
    err = _error(served.call("sql_query", {"sql": "SELECT 1", "rows": 5}))
    assert err["code"] == "unknown_field" and err["field"] == "rows"
    err = _error(served.call("vector_search", {"corpus": "people_c", "query": "x", "k": "5"}))
    assert err["code"] == "invalid_k"
    assert _error(served.call("describe_dataset", {"name": "nope"}))["code"] == "dataset_not_found"
    assert served.lake.dataset("people")["rows"] == 3  # the refused DROP changed nothing
    with pytest.raises(MCPError, match="no tool named 'nope'"):
        served.call("nope")


def test_clients_at_once_each_get_their_answer(served: Served) -> None:
    """One server for the app, one event loop per request: concurrent requests share nothing but the lake."""
    async def queries(c: Any, n: int) -> list[Any]:
        return [_ok(await c.call_tool("sql_query", {"sql": f"SELECT {n} * 100 + {i} AS v"}))["rows"][0][0]
                for i in range(5)]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda n: session(http_target(served.url), lambda c: queries(c, n)), range(4)))
    assert answers == [[n * 100 + i for i in range(5)] for n in range(4)]


def test_each_call_is_recorded_once_with_origin_mcp(served: Served) -> None:
    before = {r["id"] for r in served.records("sql.query")}
    _ok(served.call("sql_query", {"sql": "SELECT 42"}))
    _error(served.call("sql_query", {"sql": "SELEC 42"}))
    new = [r for r in served.records("sql.query") if r["id"] not in before]
    assert [(r["origin"], r["ok"]) for r in new] == [("mcp", True), ("mcp", False)]
    assert new[1]["error_code"] == "sql_syntax"


def test_a_chat_stream_comes_back_whole(served: Served) -> None:
    out = _ok(served.call("chat", {"model": "ollama/m", "prompt": "hello there", "stream": True}))
    assert out["content"] == "echo: hello there" and out["model"] == "ollama/m"
    record = served.records("chat")[-1]
    assert record["origin"] == "mcp" and record["ok"] and record["output"]["stream"] is True


def test_corpus_add_takes_embeddings_as_rows_of_numbers(served: Served) -> None:
    dim = served.lake.corpus("people_c")["dim"]
    vector = [1.0] + [0.0] * (dim - 1)
    out = _ok(served.call("corpus_add", {"name": "people_c", "rows": [{"id": 50, "text": "vector row"}],
                                         "embeddings": [vector]}))
    assert out["added"] == 1
    hits = _ok(served.call("vector_search", {"corpus": "people_c", "query": vector, "k": 1}))
    assert hits[0]["id"] == "50"
    for bad in ([vector[:-1]], [[1, "2"]], [vector, vector[:3]]):
        err = _error(served.call("corpus_add", {"name": "people_c", "rows": [{"id": 51, "text": "x"}],
                                                "embeddings": bad}))
        assert err["code"] == "invalid_embeddings", err


def test_resources_describe_datasets_and_corpora(served: Served) -> None:
    async def read_all(c: Any) -> tuple[Any, ...]:
        return (await c.list_resources(), await c.list_resource_templates(),
                await c.read_resource("lakehouse://datasets/people"), await c.read_resource("lakehouse://corpora/people_c"))

    listed, templates, dataset, corpus = session(http_target(served.url), read_all)
    uris = {r.uri for r in listed.resources}
    assert {"lakehouse://datasets/people", "lakehouse://corpora/people_c"} <= uris
    assert {t.uri_template for t in templates.resource_templates} == {"lakehouse://datasets/{name}",
                                                                      "lakehouse://corpora/{name}"}
    described = json.loads(dataset.contents[0].text)
    assert dataset.contents[0].mime_type == "application/json"
    assert described["rows"] == 3 and [c["name"] for c in described["columns"]] == ["id", "name", "role", "state"]
    assert json.loads(corpus.contents[0].text)["source"]["dataset"] == "people"
    assert served.records("corpus.describe")[-1]["origin"] == "mcp"
    for uri, message in (("lakehouse://datasets/nope", "no dataset named 'nope'"),
                         ("lakehouse://datasets/Bad-Name", "dataset"), ("file:///etc/passwd", "no resource")):
        with pytest.raises(MCPError, match=message):
            session(http_target(served.url), lambda c, u=uri: c.read_resource(u))


def test_the_mount_passes_the_apps_guards(served: Served) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=served.url, timeout=30) as http:
        bad_host = http.post("/mcp", json=ping, headers={**headers, "Host": "evil.example"})
        assert bad_host.status_code == 403 and bad_host.json()["error"]["code"] == "bad_host"
        cross = http.post("/mcp", json=ping, headers={**headers, "Origin": "https://evil.example"})
        assert cross.status_code == 403 and cross.json()["error"]["code"] == "cross_origin"
        stream = http.get("/mcp", headers={"Accept": "text/event-stream"})
        assert stream.status_code == 405 and "POST" in stream.headers["Allow"]
        assert http.post("/mcp", json=ping, headers=headers).status_code == 200


def test_protocol_errors_are_json_rpc_errors(served: Served) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx.Client(base_url=served.url, timeout=30) as http:
        for body in (b"{", b"[1, 2]", b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}'):
            resp = http.post("/mcp", content=body, headers=headers)
            assert 200 <= resp.status_code < 500, resp.text
            assert resp.json()["jsonrpc"] == "2.0" and resp.json()["error"]["code"] < 0, resp.text
        form = http.post("/mcp", data={"jsonrpc": "2.0"}, headers={"Accept": headers["Accept"]})
        assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"


def test_api_key_guards_the_mount(make_lake: Callable[..., lakehouse.Lake]) -> None:
    key = "mcp-test-key-0123456789"
    lake = make_lake(embedder="hash", api_key=key)
    with LiveServer(create_app(lake)) as url:
        with pytest.raises(MCPError, match="error response"):  # the 401
            session(http_target(url), lambda c: c.list_tools())
        refused = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=30)
        assert refused.status_code == 401 and key not in refused.text
        tools = session(http_target(url, {"Authorization": f"Bearer {key}"}), lambda c: c.list_tools())
        assert "sql_query" in {t.name for t in tools.tools}


def test_a_result_over_max_response_mb_is_a_tool_error(make_lake: Callable[..., lakehouse.Lake]) -> None:
    lake = make_lake(embedder="hash", max_response_mb=1)
    with LiveServer(create_app(lake)) as url:
        fits = _ok(call(http_target(url), "sql_query", {"sql": "SELECT repeat('x', 300000) AS s"}))
        assert len(fits["rows"][0][0]) == 300_000
        # the text twice (as text, as structured content) is over 1 MiB: a tool error, not the app's HTTP 413
        err = _error(call(http_target(url), "sql_query", {"sql": "SELECT repeat('x', 600000) AS s"}))
        assert err["code"] == "response_too_large" and "max_response_mb" in err["message"]


def test_the_key_sent_names_the_profile(served: Served) -> None:
    key = served.lake.create_profile("night_desk", datasets=["people"], corpora=["people_c"])["key"]
    _ok(call(http_target(served.url, {"Authorization": f"Bearer {key}"}), "list_datasets"))
    record = [o.to_dict() for o in served.lake.observer.ops if o.op == "dataset.list"][-1]
    assert record["origin"] == "mcp" and record["profile"] == "night_desk"

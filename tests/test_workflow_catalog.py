"""Workflows over the operations catalog: every op (and llm.chat, and registered modes) is a mode run in-process
through `lake.ops.call`, each node lands ObservedOps with origin `workflow` and its ids, and a node has the
powers of whoever started its workflow, never more."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_servers import LLMServer, ToolCalls, llm_fixture, srv_fixture, tool_turns  # noqa: F401
from workflow_lakes import open_lake, whttp_fixture, wlake_fixture  # noqa: F401

import lakehouse
from lakehouse.engine.ops import CATALOG
from lakehouse.engine.ops.workflow_nodes import CatalogModes
from lakehouse.engine.workflows.modes import register_mode, unregister_mode
from lakehouse.errors import InvalidInput


def run(lake: lakehouse.Lake, yaml_text: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return lake.ops.call("workflow.run", workflow=textwrap.dedent(yaml_text), input=inputs or {}, **kwargs)


def ops_by_id(lake: lakehouse.Lake) -> dict[str, Any]:
    return {o.id: o for o in lake.observer.ops}


def test_modes_are_the_catalog_plus_llm_chat(wlake: lakehouse.Lake) -> None:
    modes = CatalogModes(wlake).modes()
    described = {d["name"]: d for d in CATALOG.describe()}
    assert set(modes) == (set(described) - {"workflow.run", "audit.run"}) | {"llm.chat"}
    for name, info in modes.items():
        if name != "llm.chat":
            assert info.input_schema == described[name]["input_schema"] and info.description == described[name][
                "description"]
    assert modes["llm.chat"].input_schema["required"] == ["model", "prompt"]


def test_a_workflow_cannot_start_a_workflow(wlake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput, match="unknown mode 'workflow.run'") as info:
        run(wlake, "name: nested\nnodes: [{id: a, mode: workflow.run, input: {workflow: nested}}]")
    assert info.value.code == "invalid_workflow"


def test_each_node_lands_observed_ops_with_origin_workflow_and_its_ids(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    wlake.ingest(b"id,role\n1,forklift operator\n2,baker\n", "people", filename="p.csv")
    out = run(wlake, """
        name: traced
        model: ollama/m
        nodes:
          - {id: count, mode: sql.query, input: {sql: "SELECT count(*) AS n FROM people"}}
          - {id: ask, mode: llm.chat, input: {model: ollama/m, prompt: "rows: $count.output.rows.0.0"},
             depends_on: [count]}
          - {id: say, prompt: "repeat: $ask.output", depends_on: [ask]}
    """)
    assert out["status"] == "succeeded"
    assert out["nodes"]["ask"]["output"] == "echo: rows: 2"
    assert out["nodes"]["say"]["output"] == "echo: repeat: echo: rows: 2"
    recorded = ops_by_id(wlake)
    for node_id, op in (("count", "sql.query"), ("ask", "chat"), ("say", "chat")):
        (op_id,) = out["nodes"][node_id]["op_ids"]
        item = recorded[op_id]
        assert (item.op, item.origin, item.workflow, item.run_id, item.node, item.ok) == (
            op, "workflow", "traced", out["run_id"], node_id, True)
    assert out["op_ids"] == [i for n in out["nodes"].values() for i in n["op_ids"]]
    (run_op,) = [o for o in wlake.observer.ops if o.op == "workflow.run"]
    assert run_op.origin == "python" and run_op.node is None and run_op.output["run_id"] == out["run_id"]


def test_a_failed_operation_keeps_the_id_of_its_failed_record(wlake: lakehouse.Lake) -> None:
    out = run(wlake, "name: missing\nnodes: [{id: d, mode: dataset.describe, input: {name: nowhere}}]")
    node = out["nodes"]["d"]
    assert out["status"] == "failed" and node["status"] == "failed" and node["error"]["code"] == "dataset_not_found"
    (op_id,) = node["op_ids"]
    item = ops_by_id(wlake)[op_id]
    assert (item.op, item.ok, item.error_code, item.node) == ("dataset.describe", False, "dataset_not_found", "d")


def test_prompt_node_tools_run_in_process_and_are_recorded_on_the_node(wlake: lakehouse.Lake,
                                                                       srv: LLMServer) -> None:
    wlake.create_corpus("docs", rows=[{"id": "f", "text": "forklift operators need OSHA-10"},
                                      {"id": "b", "text": "bakers start at four"}])

    def searcher(messages: list[dict[str, Any]]) -> str | ToolCalls:
        results = tool_turns(messages)
        if not results:
            return ToolCalls([{"name": "matrix__search", "arguments": {"query": "forklift", "corpora": ["docs"],
                                                                        "relevance": False}}])
        return "found " + json.loads(results[-1]["content"])["results"][0]["id"]

    srv.reply_fn = searcher
    out = run(wlake, """
        name: tools
        nodes: [{id: look, prompt: "Who needs OSHA-10?", model: ollama/m, allowed_tools: [matrix.search]}]
    """)
    look = out["nodes"]["look"]
    assert out["status"] == "succeeded" and look["output"] == "found f"
    assert srv.bodies()[0]["tools"][0]["function"]["name"] == "matrix__search"
    recorded = ops_by_id(wlake)
    assert [recorded[i].op for i in look["op_ids"]] == ["chat", "matrix.search", "chat"]
    assert {(recorded[i].origin, recorded[i].node) for i in look["op_ids"]} == {("workflow", "look")}


def test_g3_8_b_observer_stats_show_workflow_nodes(wlake: lakehouse.Lake, whttp: httpx.Client) -> None:
    yaml_text = textwrap.dedent("""
        name: stats
        nodes:
          - {id: a, mode: dataset.list}
          - {id: b, mode: corpus.list}
          - {id: c, mode: dataset.list, depends_on: [a, b]}
    """)
    resp = whttp.post("/v1/observer/workflow/run", json={"workflow": yaml_text})
    assert resp.status_code == 200 and resp.json()["status"] == "succeeded"
    stats = whttp.get("/v1/observer/stats", params={"window": "1h"}).json()["ops"]
    by_key = {(s["op"], s["origin"]): s for s in stats}
    assert by_key[("dataset.list", "workflow")]["count"] == 2 and by_key[("corpus.list", "workflow")]["count"] == 1
    assert by_key[("workflow.run", "http")]["count"] == 1
    ops = whttp.get("/v1/observer/ops", params={"origin": "workflow"}).json()["ops"]
    assert sorted((o["op"], o["node"], o["workflow"], o["run_id"]) for o in ops) == sorted(
        (op, node, "stats", resp.json()["run_id"]) for op, node in
        (("dataset.list", "a"), ("corpus.list", "b"), ("dataset.list", "c")))


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to open a network connection from Python is refused and logged."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is refused in this test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts


def test_g3_8_d_matrix_search_runs_in_process(tmp_path: Path, srv: LLMServer, no_sockets: list[Any]) -> None:
    with pytest.raises(httpx.ConnectError):  # the guard works: the loopback LLM server is up, and unreachable
        httpx.get(srv.url)
    no_sockets.clear()
    lake = open_lake(tmp_path / "lake", srv)
    try:
        lake.create_corpus("docs", rows=[{"id": "f", "text": "forklift operators need OSHA-10"}])
        out = run(lake, """
            name: local
            nodes:
              - {id: search, mode: matrix.search, input: {query: forklift, corpora: [docs], relevance: false}}
              - {id: again, mode: matrix.search, input: {query: $search.output.results.0.text, corpora: [docs]},
                 depends_on: [search]}
        """)
        assert out["status"] == "succeeded", out["error"]
        assert out["nodes"]["again"]["output"]["results"][0]["id"] == "f"
        assert no_sockets == []  # no request left the process: the search is a function call
        assert [ops_by_id(lake)[i].op for i in out["op_ids"]] == ["matrix.search", "matrix.search"]
    finally:
        lake.close()


INGEST = """
    name: take-file
    nodes: [{id: load, mode: dataset.ingest, input: {source: $input.path, dataset: $input.dataset, format: csv}}]
"""


def test_a_workflow_over_http_cannot_ingest_etc_passwd(wlake: lakehouse.Lake, whttp: httpx.Client) -> None:
    body = {"workflow": textwrap.dedent(INGEST), "input": {"path": "/etc/passwd", "dataset": "pw"}}
    out = whttp.post("/v1/observer/workflow/run", json=body).json()
    load = out["nodes"]["load"]
    assert out["status"] == "failed" and load["error"]["code"] == "import_dirs_unset"
    assert wlake.datasets() == []
    (op,) = [o for o in wlake.observer.ops if o.op == "dataset.ingest"]
    assert (op.origin, op.ok, op.error_code) == ("workflow", False, "import_dirs_unset")


def test_import_dirs_bound_a_workflow_started_over_http(tmp_path: Path, srv: LLMServer) -> None:
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "ok.csv").write_text("a,b\n1,2\n")
    lake = open_lake(tmp_path / "lake", srv, import_dirs=[str(imports)])
    try:
        from http_server import LiveServer

        from lakehouse.http import create_app

        with LiveServer(create_app(lake)) as url:
            outside = httpx.post(url + "/v1/observer/workflow/run", timeout=60, json={
                "workflow": textwrap.dedent(INGEST), "input": {"path": "/etc/passwd", "dataset": "pw"}}).json()
            inside = httpx.post(url + "/v1/observer/workflow/run", timeout=60, json={
                "workflow": textwrap.dedent(INGEST), "input": {"path": "ok.csv", "dataset": "ok"}}).json()
        assert outside["nodes"]["load"]["error"]["code"] == "path_outside_import_dirs"
        assert inside["status"] == "succeeded" and [d["name"] for d in lake.datasets()] == ["ok"]
    finally:
        lake.close()


def test_a_tool_call_of_a_workflow_over_http_is_bound_too(wlake: lakehouse.Lake, whttp: httpx.Client,
                                                          srv: LLMServer) -> None:
    def ingester(messages: list[dict[str, Any]]) -> str | ToolCalls:
        results = tool_turns(messages)
        if not results:
            return ToolCalls([{"name": "dataset__ingest", "arguments": {"source": "/etc/passwd", "dataset": "pw",
                                                                         "format": "csv"}}])
        return results[-1]["content"]

    srv.reply_fn = ingester
    yaml_text = "name: sly\nnodes: [{id: a, prompt: load it, model: ollama/m, allowed_tools: [dataset.ingest]}]"
    out = whttp.post("/v1/observer/workflow/run", json={"workflow": yaml_text}).json()
    assert json.loads(out["nodes"]["a"]["output"])["error"]["code"] == "import_dirs_unset"
    assert wlake.datasets() == []


def test_a_workflow_started_locally_has_local_powers(wlake: lakehouse.Lake, write: Any) -> None:
    path = write("local.csv", "a,b\n1,2\n")
    out = run(wlake, INGEST, {"path": str(path), "dataset": "local"})
    assert out["status"] == "succeeded" and out["nodes"]["load"]["output"]["rows"] == 1


@pytest.fixture
def shout_mode() -> Iterator[None]:
    register_mode("text.shout", op="sql.query", description="Upper-case a text in SQL.",
                  input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                                "additionalProperties": False},
                  args=lambda i: {"sql": "SELECT upper(?) AS t", "params": [i["text"]]},
                  output=lambda out, i: out.rows[0][0])
    yield
    unregister_mode("text.shout")


def test_registered_modes_run_their_operation(wlake: lakehouse.Lake, shout_mode: None) -> None:
    assert CatalogModes(wlake).modes()["text.shout"].description == "Upper-case a text in SQL."
    out = run(wlake, "name: loud\nnodes: [{id: a, mode: text.shout, input: {text: $input.t}}]", {"t": "hey"})
    assert out["nodes"]["a"]["output"] == "HEY"
    item = ops_by_id(wlake)[out["nodes"]["a"]["op_ids"][0]]
    assert (item.op, item.origin, item.node) == ("sql.query", "workflow", "a")
    with pytest.raises(ValueError, match="registered already"):
        register_mode("text.shout", op="sql.query")
    with pytest.raises(InvalidInput, match="does not match mode 'text.shout'"):
        run(wlake, "name: bad\nnodes: [{id: a, mode: text.shout, input: {words: x}}]")


def test_a_mode_named_like_an_operation_is_refused(wlake: lakehouse.Lake) -> None:
    register_mode("dataset.list", op="sql.query")
    try:
        with pytest.raises(ValueError, match="also the name of an operation"):
            CatalogModes(wlake).modes()
    finally:
        unregister_mode("dataset.list")
    with pytest.raises(ValueError, match="dotted lower-case"):
        register_mode("Bad Name", op="sql.query")


def test_llm_chat_json_mode(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    srv.reply_fn = lambda messages: 'Here it is: {"kind": "bug"} as asked.'
    out = run(wlake, """
        name: js
        nodes:
          - {id: a, mode: llm.chat, input: {model: ollama/m, prompt: classify, json: true}}
          - {id: b, mode: llm.chat, input: {model: ollama/m, prompt: classify}}
    """)
    assert out["nodes"]["a"]["output"] == {"kind": "bug"}
    assert out["nodes"]["b"]["output"] == 'Here it is: {"kind": "bug"} as asked.'
    srv.reply_fn = lambda messages: "no json here"
    out = run(wlake, "name: js2\nnodes: [{id: a, mode: llm.chat, input: {model: ollama/m, prompt: x, json: true}}]")
    assert out["nodes"]["a"]["error"]["code"] == "invalid_output"


def test_the_chat_op_takes_tools_but_does_not_stream_them(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    tool = {"type": "function", "function": {"name": "dataset__list", "parameters": {"type": "object"}}}
    srv.reply_fn = lambda messages: ToolCalls([{"name": "dataset__list", "arguments": {}}])
    result = wlake.ops.call("chat", model="ollama/m", prompt="list", tools=[tool], think=False)
    assert [c["name"] for c in result.tool_calls] == ["dataset__list"] and srv.bodies()[0]["think"] is False
    with pytest.raises(InvalidInput, match="tool calls are not streamed") as info:
        wlake.ops.call("chat", model="ollama/m", prompt="list", tools=[tool], stream=True)
    assert info.value.details["field"] == "tools"

"""`lakehouse mcp --root <lake>` as an MCP client starts it (a subprocess over stdio), with the SDK's own client:
one session lists and calls tools, reads resources and meets errors; afterwards the lake's observer holds each
call once, with origin mcp."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from mcp_client import session, stdio_target

import lakehouse
from lakehouse.engine.ops import CATALOG
from lakehouse.mcp.tools import tool_name

CSV = b"id,name,role,state\n1,Ann,Forklift Operator,IL\n2,Bob,Pastry Chef,WI\n3,Cy,Welder,IL\n"

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_datasets", {}),
    ("describe_dataset", {"name": "people"}),
    ("sql_query", {"sql": "SELECT count(*) AS n FROM people"}),
    ("vector_search", {"corpus": "people_c", "query": "forklift operator", "k": 1}),
    ("matrix_search", {"query": "forklift operator", "corpora": ["people_c"], "top": 1}),
    ("ask", {"question": "forklift operator", "corpora": "people_c"}),
    ("record_playbook", {"entries": [{"query": "forklift", "corpus": "people_c", "answer_id": 1}]}),
    ("ingest_path", {"source": "more.csv", "dataset": "more"}),
    ("ingest_path", {"source": "../outside.csv", "dataset": "outside"}),
    ("sql_query", {"sql": "DELETE FROM people"}),
    ("vector_search", {"corpus": "people_c"}),
]


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    (tmp_path / "imports").mkdir()
    (tmp_path / "imports" / "more.csv").write_bytes(CSV)
    (tmp_path / "outside.csv").write_bytes(CSV)
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(CSV, "people", filename="people.csv")
        lake.create_corpus("people_c", dataset="people", text=["name", "role"], metadata=["state"])
    return tmp_path / "lake"


def test_a_stdio_session(lake_root: Path) -> None:
    imports = lake_root.parent / "imports"

    async def scenario(c: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"tools": await c.list_tools(), "calls": []}
        for tool, arguments in CALLS:
            out["calls"].append(await c.call_tool(tool, arguments))
        out["resources"] = await c.list_resources()
        out["dataset"] = await c.read_resource("lakehouse://datasets/people")
        try:
            await c.call_tool("drop_everything", {})
        except MCPError as exc:
            out["unknown_tool"] = exc
        return out

    out = session(stdio_target(lake_root, LH_EMBEDDER="hash", LH_IMPORT_DIRS=str(imports)), scenario)

    assert {t.name for t in out["tools"].tools} == {tool_name(op.name) for op in CATALOG if not op.local_only}
    results = [json.loads(r.content[0].text) for r in out["calls"]]
    errors = [r.is_error for r in out["calls"]]
    assert errors == [False] * 8 + [True] * 3
    datasets, described, counted, hits, matrix, answer, recorded, ingested = results[:8]
    assert [d["name"] for d in datasets] == ["people"] and described["rows"] == 3
    assert counted["rows"] == [[3]]
    assert hits[0]["id"] == "1" and matrix["results"][0]["id"] == "1"
    assert answer["answered_by"] == "extractive" and answer["citations"][0]["id"] == "1"
    assert recorded["recorded"] == 1 and ingested["rows"] == 3
    assert [r["error"]["code"] for r in results[8:]] == ["path_outside_import_dirs", "statement_not_allowed",
                                                         "missing_field"]
    assert results[10]["error"]["field"] == "query"
    assert {r.uri for r in out["resources"].resources} == {"lakehouse://datasets/people", "lakehouse://datasets/more",
                                                           "lakehouse://corpora/people_c"}
    assert json.loads(out["dataset"].contents[0].text)["name"] == "people"
    assert "no tool named 'drop_everything'" in str(out["unknown_tool"])

    with lakehouse.open(lake_root, embedder="hash") as lake:
        ops = [o for o in lake.observed_ops(limit=1000) if o["origin"] == "mcp"]
        assert lake.dataset("people")["rows"] == 3 and "outside" not in {d["name"] for d in lake.datasets()}
    expected = [CATALOG.get(op).name for op in ("dataset.list", "dataset.describe", "sql.query", "vectors.search",
                                                "matrix.search", "rag.ask", "playbook.record", "dataset.ingest",
                                                "dataset.ingest", "sql.query", "vectors.search")]
    # the tool calls, then the reads behind the resources (list: datasets + corpora; read: one describe)
    expected += ["dataset.list", "corpus.list", "dataset.describe"]
    assert [o["op"] for o in reversed(ops)] == expected
    assert [o["ok"] for o in reversed(ops)] == [True] * 8 + [False] * 3 + [True] * 3

"""The MCP tool list generated from the catalog (names, aliases, JSON-only schemas), and the clear error when the
optional SDK is not installed (Python, CLI, HTTP)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient
from http_server import app_fixture, client_fixture  # noqa: F401

from lakehouse.cli import main as cli_main
from lakehouse.engine.ops import CATALOG, Catalog, Input, Op
from lakehouse.errors import ExtensionMissing
from lakehouse.mcp import require_sdk
from lakehouse.mcp.tools import ALIASES, json_only, tool_specs

INSTALL = "pip install 'lakehouse[mcp]'"


def test_every_operation_is_a_tool_named_from_it() -> None:
    specs = tool_specs(CATALOG)
    assert [s.op for s in specs] == [op.name for op in CATALOG if not op.local_only]
    assert {op.name for op in CATALOG if op.local_only} == {"profile.create", "profile.list", "profile.delete",
                                                           "profile.rotate_key"}  # the owner's: no remote surface
    names = {s.op: s.name for s in specs}
    assert names["sql.query"] == "sql_query" and names["hybrid.search"] == "hybrid_search"
    assert names["matrix.search"] == "matrix_search" and names["corpus.create"] == "corpus_create"
    for op, alias in ALIASES.items():
        if op in CATALOG:
            assert names[op] == alias
    assert {"vector_search", "list_datasets", "describe_dataset", "ask", "record_playbook", "ingest_path"} <= set(
        names.values())


class _Run(Input):
    workflow: str


def test_an_operation_added_later_is_a_tool_too() -> None:
    """The tools come from whatever the catalog holds (workflow.run came from another branch this way)."""
    assert {s.op: s.name for s in tool_specs(CATALOG)}["workflow.run"] == "workflow_run"
    ops = [*CATALOG, Op("workflow.later", "Run a workflow later.", _Run, lambda lake, inp: None, writes=True)]
    spec = {s.op: s for s in tool_specs(Catalog(ops))}["workflow.later"]
    assert (spec.name, spec.description, spec.writes) == ("workflow_later", "Run a workflow later.", True)
    assert spec.input_schema["required"] == ["workflow"]


def test_two_ops_with_one_tool_name_are_refused() -> None:
    ops = [Op("a.b", "x", _Run, lambda lake, inp: None), Op("a_b", "y", _Run, lambda lake, inp: None)]
    with pytest.raises(ValueError, match="a_b"):
        tool_specs(ops)


def _schemas(schema: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every subschema with where it is (properties, items, anyOf members, $defs)."""
    found = [(path, schema)]
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    found += _schemas(sub, f"{path}.{name}")
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                found += _schemas(value, f"{path}[{key}]")
            elif key == "anyOf":
                for i, sub in enumerate(value):
                    found += _schemas(sub, f"{path}|{i}")
    return found


@pytest.mark.parametrize("spec", tool_specs(CATALOG), ids=lambda s: s.name)
def test_each_schema_is_valid_json_schema_with_json_forms_only(spec: Any) -> None:
    schema = spec.input_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for path, sub in _schemas(schema):
        # an open schema is Python's `Any` (an Arrow table, a numpy array...); only a list of any JSON values may
        # have one, as its items (sql_query's params, record_playbook's entries)
        assert sub != {} or path.endswith("[items]"), f"{spec.name}{path} accepts anything"
        assert "format" not in sub or sub["format"] not in ("binary", "base64"), f"{spec.name}{path}"
        assert sub.get("type") not in ("bytes", "ndarray"), f"{spec.name}{path}"


def test_json_only_drops_the_python_branch() -> None:
    rows = {"anyOf": [{"type": "array", "items": {}}, {}], "description": "rows (an Arrow table from Python)"}
    assert json_only({"properties": {"rows": rows}}) == {
        "properties": {"rows": {"type": "array", "items": {}, "description": "rows (an Arrow table from Python)"}}}
    both = {"anyOf": [{"type": "string"}, {"type": "null"}, {}]}
    assert json_only(both) == {"anyOf": [{"type": "string"}, {"type": "null"}]}


@pytest.fixture
def without_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `lakehouse[mcp]` were not installed: importing the SDK fails."""
    for name in [m for m in sys.modules if m == "mcp" or m.startswith("mcp.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)


@pytest.mark.usefixtures("without_sdk")
def test_without_the_sdk_python_says_what_to_install() -> None:
    with pytest.raises(ExtensionMissing, match=INSTALL.replace("[", r"\[").replace("]", r"\]")):
        require_sdk()


@pytest.mark.usefixtures("without_sdk")
def test_without_the_sdk_the_cli_says_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["mcp", "--root", str(tmp_path / "lake")]) == 1
    assert INSTALL in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()  # refused before the lake was created


@pytest.mark.usefixtures("without_sdk")
def test_without_the_sdk_the_http_mount_says_what_to_install(client: FlaskClient) -> None:
    resp = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert resp.status_code == 500
    assert resp.json["error"]["code"] == "extension_missing" and INSTALL in resp.json["error"]["message"]

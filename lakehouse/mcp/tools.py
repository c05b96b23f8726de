"""MCP tools generated from the operations catalog: one tool per operation, named, described and typed by it.

    tool_specs(CATALOG)  # [ToolSpec(name="sql_query", op="sql.query", description=..., input_schema=...), ...]

A tool's name is its operation's with `.` as `_` (`sql.query` -> `sql_query`), or the friendlier name of
`ALIASES`; its input schema is the operation's JSON schema without the forms only Python can send. Nothing here
imports the MCP SDK, so the tool list can be checked without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from lakehouse.engine.ops import Op

# Names an agent reads more easily than the op's; an op not (yet) in the catalog is simply not offered.
ALIASES: dict[str, str] = {
    "vectors.search": "vector_search",
    "dataset.list": "list_datasets",
    "dataset.describe": "describe_dataset",
    "dataset.ingest": "ingest_path",
    "rag.ask": "ask",
    "playbook.record": "record_playbook",
}


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    name: str
    op: str
    description: str
    input_schema: dict[str, Any]
    writes: bool


def tool_name(op: str) -> str:
    return ALIASES.get(op, op.replace(".", "_"))


def tool_specs(ops: Iterable[Op]) -> list[ToolSpec]:
    """One tool per operation, in catalog order; not the server owner's (`local_only`: profile administration)."""
    specs = [ToolSpec(tool_name(op.name), op.name, op.description, json_only(op.input.model_json_schema()), op.writes)
             for op in ops if not op.local_only]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"two operations map to one MCP tool name: {sorted(n for n in names if names.count(n) > 1)}")
    return specs


def json_only(schema: Any) -> Any:
    """`schema` without the branches only a Python caller can fill: an input typed `X | Any` (rows as a list or an
    Arrow table) shows the `Any` as an empty schema `{}` inside `anyOf`, which would tell an MCP client that
    anything goes. A lone `{}` (the items of `params`: any JSON value) is kept."""
    if isinstance(schema, list):
        return [json_only(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: json_only(v) for k, v in schema.items()}
    branches = out.get("anyOf")
    if isinstance(branches, list):
        typed = [b for b in branches if b != {}]
        if len(typed) == 1:  # one form left: no anyOf around it
            del out["anyOf"]
            out = {**typed[0], **out}
        elif typed:
            out["anyOf"] = typed
    return out

"""The workflow runner's two interfaces over the operations catalog (see engine/workflows/runner.py).

Every mode node, tool call and prompt runs in-process through `lake.ops.call` under
`entrance("workflow", workflow=..., run_id=..., node=...)`: it is validated and ruled like any call and
lands one ObservedOp with origin `workflow` and those ids, whose id the node keeps (`op_ids`).

Modes are every operation of the catalog (input schema from its description) plus the extra modes
registered in engine/workflows/modes.py (`llm.chat`, ...), except the operations that start workflows:
a workflow does not start workflows (no unbounded recursion).

A node has the powers of whoever started its workflow: the `initiator` (the origin of the caller that
started the run, kept through nested runs) rides in the call context, and the rules of the operations read
it (data_ops.remote): a workflow started over HTTP ingests only inside import_dirs, like HTTP itself.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from lakehouse.engine.ops.context import current, entrance
from lakehouse.engine.workflows.modes import registered_modes
from lakehouse.engine.workflows.runner import LLMReply, ModeInfo, ModeResult
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake
    from lakehouse.engine.ops.base import Catalog

STARTS_WORKFLOWS = frozenset({"workflow.run", "audit.run"})


@contextlib.contextmanager
def node_entrance(workflow: str, node: str, run_id: str) -> Iterator[None]:
    """The caller of one node's operations: origin workflow, its ids, and the initiator of the run."""
    caller = current()
    initiator = caller.initiator if caller.origin == "workflow" else caller.origin
    with entrance("workflow", workflow=workflow, run_id=run_id, node=node, initiator=initiator):
        yield


@functools.lru_cache(maxsize=8)
def _catalog_modes(catalog: Catalog) -> dict[str, ModeInfo]:
    """A catalog's operations as modes; a catalog is fixed, and its JSON schemas take ~25 ms to build."""
    return {d["name"]: ModeInfo(d["description"], d["input_schema"]) for d in catalog.describe()
            if d["name"] not in STARTS_WORKFLOWS}


class CatalogModes:
    """`ModeDispatcher` over a lake's operations catalog."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def modes(self) -> Mapping[str, ModeInfo]:
        catalog = _catalog_modes(self.lake.ops.catalog)
        out = dict(catalog)
        for mode in registered_modes().values():
            if mode.name in out or mode.name in STARTS_WORKFLOWS:
                raise ValueError(f"mode {mode.name!r} is also the name of an operation")
            base = catalog.get(mode.op)
            if base is None:  # its operation is not in this catalog (or starts workflows)
                continue
            out[mode.name] = ModeInfo(mode.description or base.description, mode.input_schema or base.input_schema)
        return out

    def run(self, mode: str, input: dict[str, Any], *, workflow: str, node: str, run_id: str) -> ModeResult:
        extra = registered_modes().get(mode)
        op, args = (extra.op, extra.args(input)) if extra else (mode, input)

        def finish(out: Any) -> Any:
            if isinstance(out, Iterator):  # a streamed chat answer: its text (recorded once drained)
                out = "".join(out)
            return out if extra is None else extra.output(out, input)

        with node_entrance(workflow, node, run_id):
            return ModeResult(*_call(self.lake, op, args, finish))


class CatalogLLM:
    """`LLM` over the `chat` operation (tools included)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def chat(self, model: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
             timeout_s: float | None, effort: str | None, workflow: str, node: str, run_id: str) -> LLMReply:
        args = {"model": model, "messages": messages, "tools": tools, "timeout_s": timeout_s,
                "think": None if effort is None else effort != "low"}
        with node_entrance(workflow, node, run_id):
            result, op_id = _call(self.lake, "chat", args, lambda out: out)
        return LLMReply(result.content, result.tool_calls, result.model, result.provider, op_id)


def _call(lake: Lake, op: str, args: dict[str, Any], finish: Callable[[Any], Any]) -> tuple[Any, str]:
    """`finish(output)` of one op call and the id of its ObservedOp (also on the error when it fails, where
    the runner finds it)."""
    ids: list[str] = []
    try:
        out = finish(lake.ops.call(op, args, on_record=ids.append))
    except LakehouseError as exc:
        if ids:
            exc.details.setdefault("op_id", ids[0])
        raise
    return out, ids[0] if ids else ""

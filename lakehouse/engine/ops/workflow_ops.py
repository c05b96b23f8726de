"""Operations on workflows: workflow.run, workflow.list, workflow.get.

    lake.ops.call("workflow.run", workflow="knowledge-pipeline", input={"corpus": "handbook", ...})
    lake.ops.call("workflow.run", workflow=open("triage.yaml").read(), input={"text": "..."})

A run executes in-process (engine/workflows/runner.py); each node calls the catalog (workflow_nodes.py),
with the powers of whoever started the run. A run that fails is returned (status `failed`, the failing
nodes' errors), not raised: `resume` with its run id finishes it, reusing what succeeded.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import remote
from lakehouse.engine.ops.types import NonBlank
from lakehouse.engine.ops.workflow_nodes import CatalogLLM, CatalogModes
from lakehouse.engine.workflows import library
from lakehouse.engine.workflows.runner import WorkflowRunner
from lakehouse.engine.workflows.store import RunRecord, RunStore

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

RunId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="a run id (32 hex digits)")]
MaxParallel = Annotated[int, Field(ge=1, le=32, description="nodes of one layer run at once, at most")]


def runner_for(lake: Lake) -> WorkflowRunner:
    return WorkflowRunner(RunStore(lake.ctx), CatalogModes(lake), CatalogLLM(lake))


def run_workflow(lake: Lake, workflow: str, inputs: Mapping[str, Any] | None, *, resume: str | None = None,
                 max_parallel: int = 4, progress: bool | None = None) -> dict[str, Any]:
    """Run a workflow (its YAML, or a name: see engine/workflows/library.py) and describe the run."""
    text = library.find(workflow, lake.root)[0] if library.is_name(workflow) else workflow
    runner = runner_for(lake)
    wf = runner.load(text)
    show = progress if progress is not None else sys.stderr.isatty()
    display: Any = contextlib.nullcontext()
    if show and not remote():  # the terminal of a server is nobody's: remote callers read the result
        from rich.console import Console

        from lakehouse.engine.workflows.progress import LiveProgress

        display = LiveProgress(wf, Console(stderr=True))
    with display as on_node:
        record = runner.run(wf, inputs, resume=resume, max_parallel=max_parallel, on_node=on_node)
    return describe_run(record)


def describe_run(record: RunRecord) -> dict[str, Any]:
    """A run as the surfaces show it: its state, each node's, and every op id it produced."""
    nodes = {}
    for node_id, rec in record.nodes.items():
        problem = None if rec.error_code is None else {"code": rec.error_code, "message": rec.error_message}
        nodes[node_id] = {
            "status": rec.status, "output": rec.output, "attempts": rec.attempts,
            "error": problem if rec.status == "failed" else None,
            "reason": problem if rec.status == "skipped" else None,  # why it did not run (when, trigger_rule)
            "op_ids": rec.op_ids, "started_at": _iso(rec.started_at), "finished_at": _iso(rec.finished_at)}
    return {"run_id": record.run_id, "workflow": record.workflow, "status": record.status, "error": record.error,
            "input": record.input, "started_at": _iso(record.started_at), "finished_at": _iso(record.finished_at),
            "nodes": nodes, "op_ids": [i for n in nodes.values() for i in n["op_ids"]]}


def _iso(t: Any) -> str | None:
    return None if t is None else t.isoformat()


class WorkflowRun(Input):
    workflow: NonBlank = Field(description=(
        "the workflow's YAML, or the name of a shipped workflow or of <root>/workflows/NAME.yaml"))
    input: dict[str, Any] | None = Field(None, description="the run's inputs ($input.name); leave out to resume")
    resume: RunId | None = Field(None, description=(
        "finish this failed (or interrupted) run of the same YAML, reusing what succeeded"))
    max_parallel: MaxParallel = 4
    progress: bool | None = Field(None, description="live per-node progress on a terminal (Python, CLI)")


class WorkflowGet(Input):
    run_id: RunId


class NoInput(Input):
    pass


def _get(lake: Lake, inp: WorkflowGet) -> dict[str, Any]:
    record = runner_for(lake).get(inp.run_id)
    # the YAML's node order is not stored: the order they ran in, then the ones that did not run
    record.nodes = dict(sorted(record.nodes.items(), key=lambda kv: (kv[1].started_at is None,
                                                                      kv[1].started_at or 0, kv[0])))
    return describe_run(record)


def _summary(d: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": d["run_id"], "workflow": d["workflow"], "status": d["status"]}


OPS = [
    Op("workflow.run", "Run a workflow (YAML or a name) in-process: a DAG of LLM prompts and operations; or resume one.",
       WorkflowRun, lambda lake, inp: run_workflow(lake, inp.workflow, inp.input, resume=inp.resume,
                                                   max_parallel=inp.max_parallel, progress=inp.progress),
       output=dict[str, Any], writes=True, http="POST /v1/observer/workflow/run", cli="lakehouse workflow run FILE",
       count=lambda d: len(d["nodes"]), summary=_summary),
    Op("workflow.list", "The shipped workflows and the lake's own (<root>/workflows/*.yaml), with their inputs.",
       NoInput, lambda lake, inp: library.listing(lake.root, CatalogModes(lake).modes()), output=list[dict[str, Any]],
       http="GET /v1/observer/workflow/list", cli="lakehouse workflow list", count=len),
    Op("workflow.get", "One workflow run: its status, and each node's status, output, error and op ids.", WorkflowGet,
       _get, output=dict[str, Any], http="GET /v1/observer/workflow/runs/<run_id>", cli="lakehouse workflow get RUN_ID",
       count=lambda d: len(d["nodes"]), summary=_summary),
]

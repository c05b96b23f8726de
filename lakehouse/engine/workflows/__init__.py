"""Workflows: YAML DAGs of LLM prompts and catalog operations, run in-process and recorded in the lake.

    from lakehouse.engine.workflows import RunStore, WorkflowRunner
    runner = WorkflowRunner(RunStore(lake.ctx), modes, llm)     # modes: ModeDispatcher, llm: LLM (runner.py)
    run = runner.run(open("triage.yaml").read(), {"text": "..."})
    run.status, run.nodes["classify"].output

spec.py (the YAML shape and its validation), refs.py (`$node.output.field`, `$input.name`),
conditions.py (`when:`), tools.py (operations as LLM tools), store.py (lh.workflow_runs,
lh.workflow_nodes), runner.py (scheduling, retries, resume, and the two interfaces), replies.py (JSON
in a model's answer), modes.py (extra modes: `llm.chat`, `register_mode`), library.py (workflows by
name: shipped and the lake's own), progress.py (live progress on a terminal).

The two interfaces over the operations catalog live in engine/ops/workflow_nodes.py; the operations
workflow.run / list / get in engine/ops/workflow_ops.py. The engine side of the shipped workflows:
gitdiff.py, chunks.py, findings.py and reviews.py (pr-audit, scrum-review; ops in audit_ops.py) and
knowledge.py (knowledge-pipeline; ops in knowledge_ops.py); quoting.py (data quoted in their prompts).
"""

from __future__ import annotations

from lakehouse.engine.workflows.runner import LLM, LLMReply, ModeDispatcher, ModeInfo, ModeResult, WorkflowRunner
from lakehouse.engine.workflows.spec import Node, Workflow, load_workflow
from lakehouse.engine.workflows.store import NodeRecord, RunRecord, RunStore

__all__ = [
    "LLM",
    "LLMReply",
    "ModeDispatcher",
    "ModeInfo",
    "ModeResult",
    "Node",
    "NodeRecord",
    "RunRecord",
    "RunStore",
    "Workflow",
    "WorkflowRunner",
    "load_workflow",
]

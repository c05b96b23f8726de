"""`WorkflowRunner`: run a validated workflow's DAG layer by layer, persist every node, resume failed runs.

    runner = WorkflowRunner(RunStore(lake.ctx), modes, llm)
    run = runner.run(yaml_text, {"text": "..."}, max_parallel=4)
    run.status, run.nodes["classify"].output, run.error
    runner.run(yaml_text, resume=run.run_id)          # after a failure: finished nodes are reused
    runner.run(yaml_text, inputs, on_node=show)       # show(NodeRecord) at each node's start and end

The runner knows operations and models only through two interfaces, implemented over the
operations catalog (which records one ObservedOp per call and hands back its id):

    ModeDispatcher.modes() -> {name: ModeInfo(description, input_schema)}
    ModeDispatcher.run(mode, input, *, workflow, node, run_id) -> ModeResult(output, op_id)
    LLM.chat(model, messages, *, tools, timeout_s, effort, workflow, node, run_id)
        -> LLMReply(content, tool_calls, model, provider, op_id)

Scheduling: the nodes of one layer (see spec.Workflow.layers) run concurrently on a pool of
`max_parallel` threads; the next layer starts when the layer is done. Each node runs in a copy of the
caller's context variables (`lakehouse.engine.ops.entrance`): a node started for an HTTP request
keeps that caller, whatever thread it runs on. Before a node runs, its
`trigger_rule` is checked against its upstream nodes' states (not met: skipped), then its `when`
(false: skipped). A node that fails does not stop the others: nodes that do not need it still
run, and `resume` has less to redo. The run fails when any node failed.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import datetime as dt
import decimal
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jsonschema

from lakehouse.engine.workflows import tools as tools_mod
from lakehouse.engine.workflows.conditions import ConditionError
from lakehouse.engine.workflows.refs import Scope
from lakehouse.engine.workflows.replies import json_reply
from lakehouse.engine.workflows.spec import Node, Workflow, load_workflow
from lakehouse.engine.workflows.store import NodeRecord, RunRecord, RunStore
from lakehouse.errors import (
    Conflict,
    InvalidInput,
    LakehouseError,
    NotFound,
    ProviderError,
    QueryTimeout,
    StorageError,
    Unprocessable,
)

log = logging.getLogger(__name__)

# Errors that may pass on a second try; `retry.on_error: all` retries any error.
TRANSIENT: tuple[type[LakehouseError], ...] = (ProviderError, QueryTimeout, Conflict, StorageError)


# -- the interfaces the operations catalog implements ------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModeInfo:
    description: str
    input_schema: Mapping[str, Any]  # JSON schema of the mode's input (an object)


@dataclasses.dataclass(frozen=True)
class ModeResult:
    output: Any  # JSON-compatible (dates, decimals, tuples, dataclasses and to_dict() objects are converted)
    op_id: str  # the ObservedOp recorded for the call


@dataclasses.dataclass(frozen=True)
class LLMReply:
    content: str
    tool_calls: Sequence[Mapping[str, Any]]  # [{"id", "name", "arguments": dict}] as ChatResult.tool_calls
    model: str
    provider: str
    op_id: str


class ModeDispatcher(Protocol):
    def modes(self) -> Mapping[str, ModeInfo]:
        """Every operation a node may run or an LLM node may call, by name."""
        ...

    def run(self, mode: str, input: dict[str, Any], *, workflow: str, node: str, run_id: str) -> ModeResult:
        """Run one operation, recording it with the workflow, node and run ids. Raise LakehouseError
        subclasses; put the op id of a failed call in the error's `details["op_id"]` to have it kept."""
        ...


class LLM(Protocol):
    def chat(self, model: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
             timeout_s: float | None, effort: str | None, workflow: str, node: str, run_id: str) -> LLMReply:
        """One chat call (ChatDispatcher.chat with `tools`), recorded with the workflow, node and run ids.
        `effort` is the node's `effort` (low | medium | high | max) or None; map it as the provider allows."""
        ...


# -- the runner -------------------------------------------------------------------------------

@dataclasses.dataclass
class _Run:
    """One execution of a run (a fresh run or a resume): what the scheduler and the workers share."""

    wf: Workflow
    run_id: str
    inputs: dict[str, Any]
    max_tool_rounds: int
    records: dict[str, NodeRecord]
    outputs: dict[str, Any]  # of succeeded nodes; written between layers only
    on_node: Callable[[NodeRecord], None] | None = None

    def notify(self, rec: NodeRecord) -> None:
        """Tell the caller's listener (a progress display); a failing listener never fails the run."""
        if self.on_node is not None:
            try:
                self.on_node(dataclasses.replace(rec, op_ids=list(rec.op_ids)))
            except Exception:  # noqa: BLE001
                log.warning("workflow %s: the node listener failed", self.wf.name, exc_info=True)


class WorkflowRunner:
    def __init__(self, store: RunStore, modes: ModeDispatcher, llm: LLM, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.modes = modes
        self.llm = llm
        self._sleep = sleep

    def load(self, text: str | bytes) -> Workflow:
        """Parse and validate a workflow against the current operations (InvalidInput on any problem)."""
        return load_workflow(text, self.modes.modes())

    def get(self, run_id: str) -> RunRecord:
        record = self.store.load(run_id)
        if record is None:
            raise NotFound(f"no workflow run {run_id!r}", code="run_not_found", run_id=run_id)
        return record

    def run(self, workflow: Workflow | str | bytes, inputs: Mapping[str, Any] | None = None, *,
            resume: str | None = None, max_parallel: int = 4, max_tool_rounds: int = 5,
            on_node: Callable[[NodeRecord], None] | None = None) -> RunRecord:
        """Run `workflow` (a loaded Workflow or its YAML) with `inputs` ($input.name); or, with `resume`, finish
        a failed run of the same YAML (or one whose process died), reusing its succeeded nodes. Node failures are in
        the result, not raised.
        `on_node(record)` hears of every node as it starts, finishes or is skipped (and of reused nodes)."""
        wf = workflow if isinstance(workflow, Workflow) else self.load(workflow)
        for name, value, least in (("max_parallel", max_parallel, 1), ("max_tool_rounds", max_tool_rounds, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidInput(f"{name} must be an integer >= {least}, got {value!r}", code="invalid_argument")
        run_id = resume or uuid.uuid4().hex
        with self.store.claim(run_id):  # one execution of a run at a time
            state = (self._resume(wf, run_id, inputs, max_tool_rounds) if resume
                     else self._start(wf, run_id, inputs, max_tool_rounds))
            state.on_node = on_node
            for rec in state.records.values():
                if rec.status == "succeeded":
                    state.notify(rec)
            try:
                self._execute(state, max_parallel)
            except BaseException as exc:
                try:
                    self.store.run_finished(run_id, "failed", _now(), f"the runner stopped: {type(exc).__name__}: {exc}")
                except LakehouseError:
                    log.exception("workflow %s: could not mark run %s failed", wf.name, run_id)
                raise
        return self._ordered(wf, self.get(run_id))

    # -- starting and resuming ----------------------------------------------------------------

    def _start(self, wf: Workflow, run_id: str, inputs: Mapping[str, Any] | None, max_tool_rounds: int) -> _Run:
        if inputs is not None and not isinstance(inputs, Mapping):
            raise InvalidInput(f"inputs must be a mapping of names to values, got {type(inputs).__name__}",
                               code="invalid_argument")
        data = _json_value(dict(inputs or {}), "the run's inputs")
        missing = [(n.id, r) for n in wf.nodes.values() for r in n.refs if r.kind == "input" and r.name not in data]
        if missing:
            node, ref = missing[0]
            raise InvalidInput(f"node {node!r} reads {ref.text}, but the run has no input {ref.name!r} "
                               f"(inputs: {', '.join(sorted(data)) or 'none'})", code="missing_input",
                               node=node, reference=ref.text)
        self.store.create_run(run_id, wf.name, wf.sha256, data, list(wf.nodes), _now())
        log.info("workflow %s: run %s started (%d nodes)", wf.name, run_id, len(wf.nodes))
        return _Run(wf, run_id, data, max_tool_rounds, {n: NodeRecord(n) for n in wf.nodes}, {})

    def _resume(self, wf: Workflow, run_id: str, inputs: Mapping[str, Any] | None, max_tool_rounds: int) -> _Run:
        old = self.get(run_id)
        if old.workflow != wf.name or old.yaml_sha256 != wf.sha256:
            raise Conflict(f"run {run_id!r} was made from another YAML (workflow {old.workflow!r}, sha256 "
                           f"{old.yaml_sha256[:12]}...; this one is {wf.name!r}, {wf.sha256[:12]}...): start a new run",
                           code="workflow_changed", run_id=run_id)
        if old.status == "succeeded":  # `running` here is a run whose process died: the caller holds its claim
            raise Conflict(f"run {run_id!r} is {old.status}; only a failed or interrupted run can be resumed",
                           code="run_not_failed", run_id=run_id)
        if inputs is not None and _json_value(dict(inputs), "the run's inputs") != old.input:
            raise Conflict(f"run {run_id!r} resumes with the inputs it started with; leave inputs out",
                           code="inputs_changed", run_id=run_id)
        done = {n: r for n, r in old.nodes.items() if n in wf.nodes and r.status == "succeeded"}
        self.store.restart_run(run_id, [n for n in wf.nodes if n not in done])
        log.info("workflow %s: run %s resumed (%d of %d nodes reused)", wf.name, run_id, len(done), len(wf.nodes))
        records = {n: done.get(n) or NodeRecord(n) for n in wf.nodes}
        return _Run(wf, run_id, old.input, max_tool_rounds, records, {n: r.output for n, r in done.items()})

    @staticmethod
    def _ordered(wf: Workflow, record: RunRecord) -> RunRecord:
        record.nodes = {n: record.nodes[n] for n in wf.nodes if n in record.nodes}
        return record

    # -- scheduling ---------------------------------------------------------------------------

    def _execute(self, run: _Run, max_parallel: int) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_parallel, thread_name_prefix=f"wf-{run.wf.name}") as pool:
            for layer in run.wf.layers:
                ready = [run.wf.nodes[n] for n in layer if run.records[n].status != "succeeded" and self._gate(run, n)]
                # each worker gets its own Scope, built here: the shared records change as the layer finishes;
                # and its own copy of the caller's context (who is calling), which threads do not inherit
                futures = [pool.submit(contextvars.copy_context().run, self._node, run, node, self._scope(run, node))
                           for node in ready]
                for node, future in zip(ready, futures):
                    rec = future.result()
                    run.records[node.id] = rec
                    if rec.status == "succeeded":
                        run.outputs[node.id] = rec.output
        failed = [r for r in run.records.values() if r.status == "failed"]
        error = "; ".join(f"node {r.node_id!r} failed: {r.error_message}" for r in failed) or None
        self.store.run_finished(run.run_id, "failed" if failed else "succeeded", _now(), error)
        log.info("workflow %s: run %s %s", run.wf.name, run.run_id, "failed" if failed else "succeeded")

    def _gate(self, run: _Run, node_id: str) -> bool:
        """Whether the node runs; if not, its skip (or the failure of its `when`) is recorded here."""
        node = run.wf.nodes[node_id]
        states = {d: run.records[d].status for d in node.depends_on}
        ok = sum(s == "succeeded" for s in states.values())
        met = not states or {
            "all_success": ok == len(states),
            "one_success": ok > 0,
            "none_failed_min_one_success": ok > 0 and "failed" not in states.values(),
            "all_done": True,
        }[node.trigger_rule]
        rec = NodeRecord(node_id, status="skipped", finished_at=_now())
        if not met:
            rec.error_code = "trigger_rule"
            rec.error_message = f"trigger_rule {node.trigger_rule} not met: " + ", ".join(
                f"{d} {s}" for d, s in states.items())
        elif node.when is not None:
            try:
                if node.when.evaluate(self._scope(run, node).resolve):
                    return True
                rec.error_code, rec.error_message = "when_false", f"when {node.when.text!r} is false"
            except ConditionError as exc:
                rec.status, rec.error_code, rec.error_message = "failed", "bad_condition", f"when {node.when.text!r}: {exc}"
            except LakehouseError as exc:
                rec.status, rec.error_code, rec.error_message = "failed", exc.code, f"when {node.when.text!r}: {exc.message}"
        else:
            return True
        run.records[node_id] = rec
        self.store.node_finished(run.run_id, rec)
        run.notify(rec)
        log.info("workflow %s: node %s %s (%s)", run.wf.name, node_id, rec.status, rec.error_message)
        return False

    @staticmethod
    def _scope(run: _Run, node: Node) -> Scope:
        return Scope(node.id, dict(run.outputs), run.inputs, node.depends_on[0] if len(node.depends_on) == 1 else None,
                     {n: r.status for n, r in run.records.items()})

    # -- one node -------------------------------------------------------------------------------

    def _node(self, run: _Run, node: Node, scope: Scope) -> NodeRecord:
        """Run one node with its retries; every outcome is a NodeRecord, also written to the store."""
        rec = NodeRecord(node.id, status="running", started_at=_now())
        try:
            rec.input = scope.value(node.input) if node.mode else {"model": node.model, "prompt": scope.render(node.prompt)}
        except LakehouseError as exc:
            return self._finish(run, rec, error=exc)
        delay = node.retry.delay_ms / 1000 if node.retry else 0.0
        retries = node.retry.max_attempts if node.retry else 0
        while True:
            rec.attempts += 1
            self.store.node_running(run.run_id, rec)
            run.notify(rec)
            try:
                if node.mode:
                    output = self._mode(run, node.id, node.mode, rec.input, rec.op_ids)
                else:
                    output = self._prompt(run, node, rec.input["prompt"], rec.op_ids)
                rec.output = _checked_output(node, output)
            except Exception as exc:  # noqa: BLE001 - a failing operation fails its node, not the run
                error = exc if isinstance(exc, LakehouseError) else _internal(node, exc)
                _keep_op_id(error, rec.op_ids)
                retryable = node.retry is not None and (node.retry.on_error == "all" or isinstance(error, TRANSIENT))
                if not retryable or rec.attempts > retries:
                    return self._finish(run, rec, error=error)
                log.warning("workflow %s: node %s attempt %d failed (%s); retrying in %.2f s",
                            run.wf.name, node.id, rec.attempts, error.message, delay)
                self._sleep(delay)
                delay *= 2
                continue
            return self._finish(run, rec)

    def _finish(self, run: _Run, rec: NodeRecord, *, error: LakehouseError | None = None) -> NodeRecord:
        rec.finished_at = _now()
        rec.status = "succeeded" if error is None else "failed"
        if error is not None:
            rec.error_code, rec.error_message = error.code, error.message
        self.store.node_finished(run.run_id, rec)
        run.notify(rec)
        log.info("workflow %s: node %s %s after %d attempt(s)", run.wf.name, rec.node_id, rec.status, rec.attempts)
        return rec

    def _mode(self, run: _Run, node_id: str, mode: str, value: dict[str, Any], op_ids: list[str]) -> Any:
        """One operation, its input checked against its schema now that references are resolved."""
        tools_mod.check_arguments(mode, value, self.modes.modes()[mode].input_schema)
        result = self.modes.run(mode, value, workflow=run.wf.name, node=node_id, run_id=run.run_id)
        op_ids.append(result.op_id)
        return result.output

    def _prompt(self, run: _Run, node: Node, prompt: str, op_ids: list[str]) -> str:
        """The model's final answer, after at most `max_tool_rounds` rounds of tool calls."""
        assert node.model is not None
        messages: list[dict[str, Any]] = []
        if node.output_format == "json":
            schema = f" matching this JSON schema:\n{json.dumps(node.output_schema)}" if node.output_schema else ""
            messages.append({"role": "system", "content": f"Answer with one JSON value only, no prose{schema}"})
        messages.append({"role": "user", "content": prompt})
        modes = self.modes.modes()
        specs = tools_mod.tool_specs(node.allowed_tools, modes) if node.allowed_tools else None
        timeout = node.idle_timeout_ms / 1000 if node.idle_timeout_ms else None
        for round_no in range(run.max_tool_rounds + 1):
            reply = self.llm.chat(node.model, messages, tools=specs, timeout_s=timeout, effort=node.effort,
                                  workflow=run.wf.name, node=node.id, run_id=run.run_id)
            op_ids.append(reply.op_id)
            if not reply.tool_calls:
                return reply.content
            if round_no == run.max_tool_rounds:
                break
            calls = [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in reply.tool_calls]
            messages.append({"role": "assistant", "content": reply.content or "", "tool_calls": calls})
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call["id"],
                                 "content": self._tool_call(run, node, call, modes, op_ids)})
        raise Unprocessable(f"node {node.id!r}: the model still asked for tools after {run.max_tool_rounds} rounds "
                            f"(the limit, max_tool_rounds={run.max_tool_rounds})", code="tool_rounds_exceeded",
                            node=node.id, limit=run.max_tool_rounds)

    def _tool_call(self, run: _Run, node: Node, call: Mapping[str, Any], modes: Mapping[str, ModeInfo],
                   op_ids: list[str]) -> str:
        """One tool call's result as the text sent back to the model (an error object if it failed)."""
        operation = tools_mod.to_operation(str(call["name"]))
        try:
            if operation not in node.allowed_tools:
                raise InvalidInput(f"tool {call['name']!r} is not offered to this node (offered: "
                                   f"{', '.join(map(tools_mod.to_function_name, node.allowed_tools))})",
                                   code="tool_not_allowed")
            output = _json_value(self._mode(run, node.id, operation, dict(call["arguments"]), op_ids),
                                 f"the output of {operation!r}")
        except LakehouseError as exc:
            log.info("workflow %s: node %s: tool %s failed: %s", run.wf.name, node.id, operation, exc.message)
            _keep_op_id(exc, op_ids)
            return tools_mod.error_result(exc)
        return json.dumps(output, ensure_ascii=False)


# -- outputs --------------------------------------------------------------------------------------

def _checked_output(node: Node, output: Any) -> Any:
    """The output as stored and seen by later nodes: JSON-compatible, parsed and schema-checked for json."""
    if node.prompt is not None and node.output_format == "json":
        text = str(output)
        try:
            output = json_reply(text)
        except ValueError:
            raise Unprocessable(f"node {node.id!r}: output_format is json, but the model answered with text that is "
                                f"not JSON: {text[:120]!r}", code="invalid_output", node=node.id) from None
    output = _json_value(output, f"the output of node {node.id!r}")
    if node.output_format == "text" and not isinstance(output, str):
        output = json.dumps(output, ensure_ascii=False)
    if node.output_schema is not None:
        validator = jsonschema.validators.validator_for(node.output_schema)(node.output_schema)
        err = jsonschema.exceptions.best_match(validator.iter_errors(output))
        if err is not None:
            at = ".".join(map(str, err.absolute_path)) or "(top)"
            raise Unprocessable(f"node {node.id!r}: output does not match output_schema at {at}: {err.message}",
                                code="output_schema_mismatch", node=node.id)
    return output


def _json_value(value: Any, what: str) -> Any:
    """`value` as JSON would carry it, so a live run and a resumed one see the same thing."""
    try:
        return json.loads(json.dumps(value, default=_plain, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise Unprocessable(f"{what} cannot be stored as JSON: {exc}", code="not_json") from None


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _keep_op_id(error: LakehouseError, op_ids: list[str]) -> None:
    """A failed operation's op id, when the dispatcher put it on the error."""
    op_id = error.details.get("op_id")
    if isinstance(op_id, str) and op_id not in op_ids:
        op_ids.append(op_id)


def _internal(node: Node, exc: Exception) -> LakehouseError:
    log.error("workflow node %s raised %s", node.id, type(exc).__name__, exc_info=exc)
    return LakehouseError(f"node {node.id!r}: {type(exc).__name__}: {exc}", code="internal")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)

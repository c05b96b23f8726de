"""Workflow YAML: parsed with `yaml.safe_load`, validated in full before anything runs.

The shape follows Archon's DAG workflows (coleam00/Archon, packages/workflows/src/schemas/workflow.ts
and dag-node.ts, read for this module) for the fields that apply here:

    name: triage                        # required
    description: Classify, then act     # Archon requires it; optional here
    provider: openrouter                # default provider for prompt nodes (a key of chat.PROVIDERS)
    model: tier:local_fast              # default model: a tier or a routable id (see chat/routing.py)
    nodes:
      - id: classify                    # [A-Za-z_][A-Za-z0-9_-]*, unique, not `input`
        prompt: "Classify: $input.text" # an LLM call through the chat dispatcher ...
        output_format: json             # text (default) | json | a JSON schema (Archon's form: implies json)
        output_schema: {type: object, required: [kind]}   # optional, with output_format json
        allowed_tools: [matrix.search]  # operations the model may call (prompt nodes)
        model / provider / effort / idle_timeout (ms, per provider attempt)
      - id: search
        mode: matrix.search             # ... or an operation of the catalog, run in-process
        input: {query: $classify.output.query, k: 5}
        depends_on: [classify]
        when: "$classify.output.kind == 'bug'"          # see conditions.py
        trigger_rule: all_success       # | one_success | none_failed_min_one_success | all_done
        retry: {max_attempts: 2, delay_ms: 1000, on_error: transient}

Archon semantics kept: `retry.max_attempts` counts retries after the first attempt (1-5) and the delay
doubles per retry; `on_error: transient` (the default) retries only errors that may pass (provider,
timeout, conflict, storage), `all` retries any; `output_format` may be the JSON schema itself;
`when` accepts `&&`/`||`; node ids may contain hyphens. Differences: `delay_ms` may be below Archon's
1000 minimum (0-60000); Archon's other node kinds (`command`, `bash`, `loop`, `script`, ...) and
Claude-specific fields are unknown fields here, like any typo. Every error is an `InvalidInput`
naming the node and the field (`details`: node, field).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import yaml

from lakehouse.engine.chat.routing import PROVIDERS, TIER_PREFIX, parse_model
from lakehouse.engine.workflows.conditions import Condition, ConditionError, parse_condition
from lakehouse.engine.workflows.refs import INPUT, Ref, RefSyntaxError, Template, compile_text, compile_value, refs_in
from lakehouse.engine.workflows.tools import check_tool_name
from lakehouse.errors import InvalidInput, LakehouseError

WORKFLOW_FIELDS = ("name", "description", "provider", "model", "nodes")
NODE_FIELDS = ("id", "description", "depends_on", "prompt", "mode", "input", "model", "provider", "allowed_tools",
               "effort", "idle_timeout", "when", "trigger_rule", "retry", "output_format", "output_schema")
PROMPT_ONLY = ("model", "provider", "allowed_tools", "effort", "idle_timeout")
ARCHON_KINDS = ("command", "bash", "loop", "loop_group", "script", "approval", "cancel", "workflow", "include")
TRIGGER_RULES = ("all_success", "one_success", "none_failed_min_one_success", "all_done")
EFFORTS = ("low", "medium", "high", "max")
RETRY_FIELDS = ("max_attempts", "delay_ms", "on_error")
ON_ERROR = ("transient", "all")
MAX_YAML_BYTES = 1_000_000
MAX_VALUES = 100_000  # values in one node's input: YAML aliases can make a small file a huge tree
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class Retry:
    max_attempts: int  # retries after the first attempt (Archon's meaning)
    delay_ms: int  # before the first retry; doubled for each next one
    on_error: str  # "transient" | "all"


@dataclasses.dataclass(frozen=True)
class Node:
    id: str
    description: str | None
    depends_on: tuple[str, ...]
    prompt: Template | None  # a prompt node ...
    mode: str | None  # ... or a mode node
    input: Any  # compiled (refs.compile_value) mapping; {} for prompt nodes
    model: str | None  # routable model id or tier, provider applied; None for mode nodes
    allowed_tools: tuple[str, ...]
    effort: str | None
    idle_timeout_ms: int | None
    when: Condition | None
    trigger_rule: str
    retry: Retry | None
    output_format: str  # "text" | "json" (the default of mode nodes: their output as the JSON value it is)
    output_schema: Mapping[str, Any] | None

    @property
    def refs(self) -> list[Ref]:
        found = refs_in(self.input) + (self.prompt.refs if self.prompt else [])
        return found + (self.when.refs if self.when else [])


@dataclasses.dataclass(frozen=True)
class Workflow:
    name: str
    description: str | None
    nodes: dict[str, Node]  # in YAML order
    layers: tuple[tuple[str, ...], ...]  # topological: a node's upstream nodes are all in earlier layers
    sha256: str  # of the YAML text: a run resumes only under the same text

    def upstream(self, node: str) -> set[str]:
        """Every node `node` depends on, directly or through others."""
        seen: set[str] = set()
        stack = list(self.nodes[node].depends_on)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.nodes[n].depends_on)
        return seen


def _error(message: str, *, node: str | None = None, field: str | None = None) -> InvalidInput:
    where = f"node {node!r}" if node is not None else "workflow"
    where += f", field {field!r}" if field is not None else ""
    return InvalidInput(f"{where}: {message}", code="invalid_workflow", node=node, field=field)


def load_workflow(text: str | bytes, modes: Mapping[str, Any]) -> Workflow:
    """Parse and validate a workflow. `modes` maps operation names to their `ModeInfo` (an `input_schema`
    attribute, a JSON schema): unknown modes and tools are refused here, static inputs checked."""
    raw_bytes = text.encode() if isinstance(text, str) else text
    if len(raw_bytes) > MAX_YAML_BYTES:
        raise _error(f"the YAML is {len(raw_bytes)} bytes; the limit is {MAX_YAML_BYTES}")
    try:
        doc = yaml.safe_load(raw_bytes)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _error(f"malformed YAML{at}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise _error(f"malformed YAML: {exc}") from exc
    except RecursionError:  # PyYAML parses nested collections recursively
        raise _error("the YAML nests too deeply") from None
    if not isinstance(doc, Mapping):
        raise _error(f"the YAML must be a mapping with name and nodes, got {type(doc).__name__}")
    _check_fields(doc, WORKFLOW_FIELDS, None)
    name = _string(doc, "name", None, required=True)
    description = _string(doc, "description", None)
    provider = _provider(doc, None)
    model = _string(doc, "model", None)
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise _error("must be a non-empty list of nodes", field="nodes")
    ids = _node_ids(raw_nodes)
    nodes = {}
    for raw in raw_nodes:
        node = _node(raw, ids, modes, model, provider)
        nodes[node.id] = node
    layers = _layers(nodes)
    wf = Workflow(name, description, nodes, layers, hashlib.sha256(raw_bytes).hexdigest())
    for node in nodes.values():
        _check_refs(wf, node)
        if node.mode is not None:
            check_static_input(node, modes[node.mode].input_schema)
    return wf


def _check_fields(raw: Mapping[str, Any], known: tuple[str, ...], node: str | None) -> None:
    for key in raw:
        if key not in known:
            hint = ""
            if node is not None and key in ARCHON_KINDS:
                hint = f"; Archon's {key!r} nodes are not supported: a node runs a prompt or a mode"
            elif node is None and key in NODE_FIELDS:
                hint = "; it belongs on a node"
            raise _error(f"unknown field{hint} (known: {', '.join(known)})", node=node, field=str(key))


def _string(raw: Mapping[str, Any], key: str, node: str | None, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise _error("is required", node=node, field=key)
        return None
    if not isinstance(value, str) or not value.strip():
        raise _error(f"must be a non-empty string, got {_show(value)}", node=node, field=key)
    return value


def _provider(raw: Mapping[str, Any], node: str | None) -> str | None:
    value = _string(raw, "provider", node)
    if value is not None and value not in PROVIDERS:
        raise _error(f"unknown provider {value!r} (known: {', '.join(PROVIDERS)})", node=node, field="provider")
    return value


def _node_ids(raw_nodes: list[Any]) -> list[str]:
    ids: list[str] = []
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            raise _error(f"nodes[{i}] must be a mapping, got {_show(raw)}", field="nodes")
        node_id = raw.get("id")
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            raise _error(f"nodes[{i}].id must be a name ([A-Za-z_][A-Za-z0-9_-]*), got {_show(node_id)}", field="id")
        if node_id == INPUT:
            raise _error(f"{INPUT!r} is reserved for the run's inputs ($input.name)", node=node_id, field="id")
        if node_id in ids:
            raise _error(f"duplicate node id (nodes[{ids.index(node_id)}] and nodes[{i}])", node=node_id, field="id")
        ids.append(node_id)
    return ids


def _node(raw: Mapping[str, Any], ids: list[str], modes: Mapping[str, Any], wf_model: str | None,
          wf_provider: str | None) -> Node:
    nid = raw["id"]
    _check_fields(raw, NODE_FIELDS, nid)
    description = _string(raw, "description", nid)
    depends_on = _names(raw, "depends_on", nid)
    for dep in depends_on:
        if dep not in ids:
            raise _error(f"unknown node {dep!r} (nodes: {', '.join(ids)})", node=nid, field="depends_on")
        if dep == nid:
            raise _error("a node cannot depend on itself", node=nid, field="depends_on")
    has_prompt, has_mode = raw.get("prompt") is not None, raw.get("mode") is not None
    if has_prompt == has_mode:
        raise _error("a node needs exactly one of 'prompt' (an LLM call) or 'mode' (an operation)"
                     + (", not both" if has_prompt else ""), node=nid, field="mode" if has_mode else "prompt")
    prompt = mode = model = None
    allowed_tools: tuple[str, ...] = ()
    compiled_input: Any = {}
    if has_prompt:
        text = _string(raw, "prompt", nid)
        prompt = _compile(lambda: compile_text(text, ids), nid, "prompt")
        if raw.get("input") is not None:
            raise _error("only mode nodes take an input; a prompt node writes references in its prompt",
                         node=nid, field="input")
        model = _model(raw, nid, wf_model, wf_provider)
        allowed_tools = _names(raw, "allowed_tools", nid)
        for tool in allowed_tools:
            if tool not in modes:
                raise _error(f"unknown operation {tool!r}", node=nid, field="allowed_tools")
            try:
                check_tool_name(tool)
            except InvalidInput as exc:
                raise _error(exc.message, node=nid, field="allowed_tools") from None
    else:
        mode = raw["mode"]
        if not isinstance(mode, str) or mode not in modes:
            known = ", ".join(sorted(modes)) or "none"
            raise _error(f"unknown mode {_show(mode)} (known: {known})", node=nid, field="mode")
        for key in PROMPT_ONLY:
            if raw.get(key) is not None:
                raise _error("applies to prompt nodes only", node=nid, field=key)
        value = raw.get("input", {})
        if not isinstance(value, Mapping):
            raise _error(f"must be a mapping of the operation's arguments, got {_show(value)}", node=nid, field="input")
        _count_values(value, nid)
        compiled_input = _compile(lambda: compile_value(dict(value), ids), nid, "input")
    effort = raw.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise _error(f"must be one of {', '.join(EFFORTS)}, got {_show(effort)}", node=nid, field="effort")
    idle = raw.get("idle_timeout")
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float)) or idle <= 0):
        raise _error(f"must be a positive number of milliseconds, got {_show(idle)}", node=nid, field="idle_timeout")
    trigger = raw.get("trigger_rule", "all_success")
    if trigger not in TRIGGER_RULES:
        raise _error(f"must be one of {', '.join(TRIGGER_RULES)}, got {_show(trigger)}", node=nid, field="trigger_rule")
    when = None
    if raw.get("when") is not None:
        when_text = raw["when"]
        if not isinstance(when_text, str) or not when_text.strip():
            raise _error(f"must be a condition string, got {_show(when_text)}", node=nid, field="when")
        try:
            when = parse_condition(when_text, ids)
        except ConditionError as exc:
            raise _error(f"{when_text!r}: {exc}", node=nid, field="when") from None
    output_format, output_schema = _output(raw, nid, "text" if has_prompt else "json")
    return Node(nid, description, depends_on, prompt, mode, compiled_input, model, allowed_tools, effort,
                None if idle is None else int(idle), when, trigger, _retry(raw, nid), output_format, output_schema)


def _compile(build: Any, node: str, field: str) -> Any:
    try:
        return build()
    except RefSyntaxError as exc:
        raise _error(str(exc), node=node, field=field) from None


def _names(raw: Mapping[str, Any], key: str, node: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(f"must be a list of names, got {_show(value)}", node=node, field=key)
    if len(set(value)) != len(value):
        raise _error(f"lists a name twice: {value}", node=node, field=key)
    return tuple(value)


def _model(raw: Mapping[str, Any], node: str, wf_model: str | None, wf_provider: str | None) -> str:
    """The routable model of a prompt node: its own or the workflow's, with a provider prefixed to a bare name.
    A tier or an id that names its provider keeps its own routing; on one node, both must agree."""
    own_model, own_provider = _string(raw, "model", node), _provider(raw, node)
    model, provider = own_model or wf_model, own_provider or wf_provider
    if model is None:
        raise _error("a prompt node needs a model: set 'model' on the node or the workflow", node=node, field="model")
    head = model.partition("/")[0]
    if model.startswith(TIER_PREFIX) or (head in PROVIDERS and "/" in model):
        if own_model and own_provider and not (head == own_provider and "/" in model):
            raise _error(f"model {model!r} already chooses its provider; drop provider {own_provider!r}",
                         node=node, field="provider")
        routed = model
    else:
        routed = f"{provider}/{model}" if provider else model
    if not routed.startswith(TIER_PREFIX):
        try:
            parse_model(routed)
        except LakehouseError as exc:
            raise _error(exc.message, node=node, field="model") from None
    return routed


def _output(raw: Mapping[str, Any], node: str, default: str) -> tuple[str, Mapping[str, Any] | None]:
    """A prompt node answers text unless told json; a mode node's output is kept as the JSON value it is."""
    fmt, schema = raw.get("output_format", default), raw.get("output_schema")
    if isinstance(fmt, Mapping):  # Archon's form: the schema itself
        if schema is not None:
            raise _error("output_format already is a JSON schema; drop output_schema", node=node, field="output_schema")
        fmt, schema = "json", fmt
    if fmt not in ("text", "json"):
        raise _error(f"must be 'text', 'json' or a JSON schema, got {_show(fmt)}", node=node, field="output_format")
    if schema is not None:
        if fmt != "json":
            raise _error("needs output_format: json", node=node, field="output_schema")
        if not isinstance(schema, Mapping):
            raise _error(f"must be a JSON schema (a mapping), got {_show(schema)}", node=node, field="output_schema")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise _error(f"is not a valid JSON schema: {exc.message}", node=node, field="output_schema") from None
        remote = [ref for ref in _schema_refs(schema) if not ref.startswith("#")]
        if remote:  # jsonschema would not fetch it (no retrieval is configured), so it could never resolve
            raise _error(f"$ref {remote[0]!r} points outside the schema; only local refs ('#/...') work",
                         node=node, field="output_schema")
    return fmt, schema


def _schema_refs(schema: Any) -> list[str]:
    if isinstance(schema, Mapping):
        own = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return own + [r for v in schema.values() for r in _schema_refs(v)]
    if isinstance(schema, list):
        return [r for v in schema for r in _schema_refs(v)]
    return []


def _retry(raw: Mapping[str, Any], node: str) -> Retry | None:
    value = raw.get("retry")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _error(f"must be a mapping {{max_attempts, delay_ms?, on_error?}}, got {_show(value)}",
                     node=node, field="retry")
    for key in value:
        if key not in RETRY_FIELDS:
            raise _error(f"unknown key {key!r} (known: {', '.join(RETRY_FIELDS)})", node=node, field="retry")
    attempts, delay, on_error = value.get("max_attempts"), value.get("delay_ms", 1000), value.get("on_error", "transient")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 5:
        raise _error(f"max_attempts must be an integer from 1 to 5 (retries after the first attempt), got "
                     f"{_show(attempts)}", node=node, field="retry")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 60_000:
        raise _error(f"delay_ms must be a number from 0 to 60000, got {_show(delay)}", node=node, field="retry")
    if on_error not in ON_ERROR:
        raise _error(f"on_error must be one of {', '.join(ON_ERROR)}, got {_show(on_error)}", node=node, field="retry")
    return Retry(attempts, int(delay), on_error)


def _count_values(value: Any, node: str) -> None:
    seen = 0
    stack = [value]
    while stack:
        v = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _error(f"holds more than {MAX_VALUES} values", node=node, field="input")
        if isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _layers(nodes: dict[str, Node]) -> tuple[tuple[str, ...], ...]:
    """Nodes grouped by depth (1 + the deepest upstream node); a cycle is an error naming it."""
    depth: dict[str, int] = {}
    visiting: list[str] = []

    def visit(n: str) -> int:
        if n in depth:
            return depth[n]
        if n in visiting:
            cycle = visiting[visiting.index(n):] + [n]
            raise _error(f"cycle: {' -> '.join(cycle)}", node=n, field="depends_on")
        visiting.append(n)
        depth[n] = 1 + max((visit(d) for d in nodes[n].depends_on), default=-1)
        visiting.pop()
        return depth[n]

    for n in nodes:
        visit(n)
    return tuple(tuple(n for n in nodes if depth[n] == level) for level in range(max(depth.values()) + 1))


def _check_refs(wf: Workflow, node: Node) -> None:
    """A reference may only name a node upstream of this one: any other output may not exist yet."""
    upstream = wf.upstream(node.id)
    for ref in node.refs:
        field = _field_of(node, ref)
        if ref.kind == "upstream" and len(node.depends_on) != 1:
            raise _error(f"{ref.text} means the output of the only upstream node, but this node depends on "
                         f"{len(node.depends_on)}; name the node ($id.output)", node=node.id, field=field)
        if ref.kind == "node" and ref.name not in upstream:
            raise _error(f"{ref.text} names node {ref.name!r}, which is not upstream of {node.id!r}: "
                         f"add it to depends_on", node=node.id, field=field)


def _field_of(node: Node, ref: Ref) -> str:
    if node.when is not None and ref in node.when.refs:
        return "when"
    return "prompt" if node.prompt is not None else "input"


class _Unresolved:
    """Stands for a value known only at run time while a static input is checked against its schema."""

    def __repr__(self) -> str:
        return "<reference>"


_UNRESOLVED = _Unresolved()
_COMBINATORS = {"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "dependentSchemas"}


def check_static_input(node: Node, schema: Mapping[str, Any]) -> None:
    """Check the parts of a mode node's input known at load: references are left out (a required key
    missing or an unknown key is still an error), and checked again once resolved."""
    instance = _placeholders(node.input)
    validator = jsonschema.validators.validator_for(schema)(schema)
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        if _involves_reference(instance, list(err.absolute_path), err.validator):
            continue
        at = ".".join(map(str, err.absolute_path)) or "(top)"
        raise _error(f"does not match mode {node.mode!r}'s input schema at {at}: {err.message}",
                     node=node.id, field="input")


def _placeholders(compiled: Any) -> Any:
    if isinstance(compiled, (Ref, Template)):
        return _UNRESOLVED
    if isinstance(compiled, Mapping):
        return {k: _placeholders(v) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [_placeholders(v) for v in compiled]
    return compiled


def _involves_reference(instance: Any, path: list[Any], validator: Any) -> bool:
    value = instance
    for key in path:
        if value is _UNRESOLVED:
            return True
        value = value[key]
    if value is _UNRESOLVED:
        return True
    return validator in _COMBINATORS and _contains(value, _UNRESOLVED)


def _contains(value: Any, target: object) -> bool:
    if value is target:
        return True
    if isinstance(value, Mapping):
        return any(_contains(v, target) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, target) for v in value)
    return False


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""Loading workflow YAML: Archon's shape is accepted, every malformed workflow is refused before anything runs."""

from __future__ import annotations

import textwrap

import pytest
from workflow_doubles import TestModes

from lakehouse.engine.workflows import Workflow, load_workflow
from lakehouse.errors import InvalidInput

MODES = TestModes().modes()


def load(text: str) -> Workflow:
    return load_workflow(textwrap.dedent(text), MODES)


def refused(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        load(text)
    assert info.value.code == "invalid_workflow"
    return info.value


ARCHON_SHAPED = """
    # The shape of Archon's DAG workflows (name, description, provider, model, nodes with id, depends_on,
    # prompt, when, trigger_rule, retry, output_format, allowed_tools, idle_timeout, effort).
    name: review-essay
    description: |
      Find the essay's shape, its weakest point, and an improvement.
    provider: openrouter
    model: vendor/writer
    nodes:
      - id: shape
        description: Outline
        prompt: "Outline this essay: $input.essay"
      - id: weakness
        prompt: "Given the outline $shape.output, name the weakest part."
        depends_on: [shape]
        model: tier:fast
        effort: high
        idle_timeout: 30000
      - id: improvement
        prompt: "Improve: $.output"
        depends_on: [weakness]
        trigger_rule: none_failed_min_one_success
        retry: {max_attempts: 2, delay_ms: 1000, on_error: all}
        output_format:
          type: object
          properties: {text: {type: string}}
          required: [text]
      - id: store
        mode: echo
        input: {value: {essay: $input.essay, better: $improvement.output.text}}
        depends_on: [improvement]
        when: "$improvement.output.text != '' && $weakness.output != 'none'"
"""


def test_archon_shaped_workflow_loads() -> None:
    wf = load(ARCHON_SHAPED)
    assert wf.name == "review-essay" and wf.description.startswith("Find the essay")
    assert wf.layers == (("shape",), ("weakness",), ("improvement",), ("store",))
    shape, weakness, improvement, store = wf.nodes.values()
    assert shape.model == "openrouter/vendor/writer"  # the workflow's provider prefixed to its bare model
    assert weakness.model == "tier:fast" and weakness.effort == "high" and weakness.idle_timeout_ms == 30000
    assert improvement.trigger_rule == "none_failed_min_one_success"
    assert improvement.retry is not None and improvement.retry.max_attempts == 2 and improvement.retry.on_error == "all"
    assert improvement.output_format == "json" and improvement.output_schema["required"] == ["text"]
    assert store.mode == "echo" and store.model is None and store.output_format == "json"
    assert [r.text for r in store.refs] == ["$input.essay", "$improvement.output.text", "$improvement.output.text",
                                            "$weakness.output"]
    assert len(wf.sha256) == 64


def test_layers_group_independent_nodes() -> None:
    wf = load("""
        name: diamond
        nodes:
          - {id: d, mode: echo, input: {value: 4}, depends_on: [b, c]}
          - {id: b, mode: echo, input: {value: 2}, depends_on: [a]}
          - {id: a, mode: echo, input: {value: 1}}
          - {id: c, mode: echo, input: {value: 3}, depends_on: [a]}
          - {id: e, mode: echo, input: {value: 5}}
    """)
    assert wf.layers == (("a", "e"), ("b", "c"), ("d",))
    assert wf.upstream("d") == {"a", "b", "c"}


# -- every class of bad YAML: InvalidInput naming the node and the field ---------------------------

BAD = [
    ("unknown top-level field", """
        name: w
        schedule: daily
        nodes: [{id: a, mode: echo, input: {value: 1}}]
     """, None, "schedule", "unknown field"),
    ("node field on the workflow", """
        name: w
        depends_on: [a]
        nodes: [{id: a, mode: echo, input: {value: 1}}]
     """, None, "depends_on", "belongs on a node"),
    ("unknown node field", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retries: 3}]
     """, "a", "retries", "unknown field"),
    ("Archon-only node kind", """
        name: w
        nodes: [{id: a, bash: "echo hi"}]
     """, "a", "bash", "not supported"),
    ("missing name", """
        nodes: [{id: a, mode: echo, input: {value: 1}}]
     """, None, "name", "is required"),
    ("name of the wrong type", """
        name: [w]
        nodes: [{id: a, mode: echo, input: {value: 1}}]
     """, None, "name", "non-empty string"),
    ("nodes not a list", """
        name: w
        nodes: {a: {mode: echo}}
     """, None, "nodes", "non-empty list"),
    ("node not a mapping", """
        name: w
        nodes: [a]
     """, None, "nodes", "must be a mapping"),
    ("bad node id", """
        name: w
        nodes: [{id: "a b", mode: echo, input: {value: 1}}]
     """, None, "id", "must be a name"),
    ("reserved node id", """
        name: w
        nodes: [{id: input, mode: echo, input: {value: 1}}]
     """, "input", "id", "reserved"),
    ("duplicate id", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: a, mode: echo, input: {value: 2}}
     """, "a", "id", "duplicate node id"),
    ("dangling depends_on", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}, depends_on: [nope]}
     """, "b", "depends_on", "unknown node 'nope'"),
    ("depends_on of the wrong type", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}, depends_on: a}
     """, "b", "depends_on", "list of names"),
    ("self dependency", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, depends_on: [a]}]
     """, "a", "depends_on", "itself"),
    ("cycle", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}, depends_on: [c]}
          - {id: b, mode: echo, input: {value: 2}, depends_on: [a]}
          - {id: c, mode: echo, input: {value: 3}, depends_on: [b]}
     """, "a", "depends_on", "cycle: a -> c -> b -> a"),
    ("both prompt and mode", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, mode: echo}]
     """, "a", "mode", "not both"),
    ("neither prompt nor mode", """
        name: w
        nodes: [{id: a, description: nothing to do}]
     """, "a", "prompt", "exactly one of"),
    ("unknown mode", """
        name: w
        nodes: [{id: a, mode: launch_rockets}]
     """, "a", "mode", "unknown mode 'launch_rockets'"),
    ("prompt of the wrong type", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: [hi]}]
     """, "a", "prompt", "non-empty string"),
    ("prompt node without a model", """
        name: w
        nodes: [{id: a, prompt: hi}]
     """, "a", "model", "needs a model"),
    ("unknown provider", """
        name: w
        provider: codex
        model: gpt-5
        nodes: [{id: a, prompt: hi}]
     """, None, "provider", "unknown provider 'codex'"),
    ("provider against a model that names its own", """
        name: w
        nodes: [{id: a, prompt: hi, model: kimi/k2, provider: openrouter}]
     """, "a", "provider", "already chooses its provider"),
    ("model with whitespace", """
        name: w
        nodes: [{id: a, prompt: hi, model: "bad model"}]
     """, "a", "model", "whitespace"),
    ("input on a prompt node", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, input: {x: 1}}]
     """, "a", "input", "only mode nodes"),
    ("input not a mapping", """
        name: w
        nodes: [{id: a, mode: echo, input: [1]}]
     """, "a", "input", "must be a mapping"),
    ("static input against the mode's schema", """
        name: w
        nodes: [{id: a, mode: math.add, input: {a: 1, b: two}}]
     """, "a", "input", "at b: 'two' is not of type 'number'"),
    ("unknown input key despite references", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: math.add, input: {a: $a.output, b: 1, c: 3}, depends_on: [a]}
     """, "b", "input", "Additional properties"),
    ("required input key missing", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: math.add, input: {a: $a.output}, depends_on: [a]}
     """, "b", "input", "'b' is a required property"),
    ("model on a mode node", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, model: ollama/m}]
     """, "a", "model", "prompt nodes only"),
    ("allowed_tools on a mode node", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, allowed_tools: [echo]}]
     """, "a", "allowed_tools", "prompt nodes only"),
    ("unknown tool", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, allowed_tools: [shell.exec]}]
     """, "a", "allowed_tools", "unknown operation 'shell.exec'"),
    ("bad trigger_rule", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, trigger_rule: any_success}]
     """, "a", "trigger_rule", "must be one of all_success"),
    ("retry not a mapping", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retry: 3}]
     """, "a", "retry", "must be a mapping"),
    ("retry max_attempts out of range", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retry: {max_attempts: 9}}]
     """, "a", "retry", "from 1 to 5"),
    ("retry without max_attempts", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retry: {delay_ms: 10}}]
     """, "a", "retry", "max_attempts must be"),
    ("retry unknown key", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retry: {max_attempts: 1, backoff: 2}}]
     """, "a", "retry", "unknown key 'backoff'"),
    ("retry bad delay", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, retry: {max_attempts: 1, delay_ms: -5}}]
     """, "a", "retry", "delay_ms"),
    ("bad output_format", """
        name: w
        nodes: [{id: a, mode: echo, input: {value: 1}, output_format: yaml}]
     """, "a", "output_format", "'text', 'json' or a JSON schema"),
    ("output_schema without json", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, output_schema: {type: object}}]
     """, "a", "output_schema", "needs output_format: json"),
    ("invalid output_schema", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, output_format: json, output_schema: {type: 12}}]
     """, "a", "output_schema", "not a valid JSON schema"),
    ("output_schema with a remote $ref", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, output_format: json, output_schema: {$ref: "https://example.com/s.json"}}]
     """, "a", "output_schema", "points outside the schema"),
    ("bad effort", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, effort: extreme}]
     """, "a", "effort", "low, medium, high, max"),
    ("bad idle_timeout", """
        name: w
        model: ollama/m
        nodes: [{id: a, prompt: hi, idle_timeout: "10s"}]
     """, "a", "idle_timeout", "milliseconds"),
    ("bad when", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}, depends_on: [a], when: "$a.output =="}
     """, "b", "when", "value was expected"),
    ("when that is code", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}, depends_on: [a], when: "__import__('os').system('x')"}
     """, "b", "when", "unknown word '__import__'"),
    ("reference to a missing node", """
        name: w
        model: ollama/m
        nodes:
          - {id: a, prompt: hi}
          - {id: b, prompt: "see $a.output", depends_on: [a]}
          - {id: c, prompt: "see $b.output", depends_on: [a]}
     """, "c", "prompt", "$b.output names node 'b', which is not upstream of 'c'"),
    ("reference typo", """
        name: w
        model: ollama/m
        nodes:
          - {id: a, prompt: hi}
          - {id: b, prompt: "see $a.outptu", depends_on: [a]}
     """, "b", "prompt", "names node 'a' but not its output"),
    ("$.output with two upstream nodes", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}}
          - {id: c, mode: echo, input: {value: $.output}, depends_on: [a, b]}
     """, "c", "input", "only upstream node"),
    ("when naming a node that is not upstream", """
        name: w
        nodes:
          - {id: a, mode: echo, input: {value: 1}}
          - {id: b, mode: echo, input: {value: 2}, when: "$a.output == 1"}
     """, "b", "when", "not upstream of 'b'"),
]


@pytest.mark.parametrize(("text", "node", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_workflow_is_refused_naming_node_and_field(text: str, node: str | None, field: str, message: str) -> None:
    err = refused(text)
    assert err.details["node"] == node and err.details["field"] == field
    assert message in err.message
    where = f"node {node!r}, field {field!r}" if node else f"workflow, field {field!r}"
    assert err.message.startswith(where)


@pytest.mark.parametrize("text", [
    "name: w\nnodes: [{id: a, mode: echo\n",  # unclosed flow mapping
    "name: w\n  nodes: x\n bad: indentation",
    "\tname: w",
])
def test_malformed_yaml_is_invalid_input_with_a_position(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"malformed YAML at line \d+, column \d+") as info:
        load_workflow(text, MODES)
    assert info.value.details["field"] is None


@pytest.mark.parametrize("text", ["", "just a string", "- a\n- list"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="must be a mapping"):
        load_workflow(text, MODES)


def test_yaml_tags_that_build_objects_are_refused() -> None:
    """safe_load only: a tag asking for a Python object is a YAML error, never a call."""
    with pytest.raises(InvalidInput, match="malformed YAML"):
        load_workflow("name: !!python/object/apply:os.system ['echo pwned']\nnodes: []\n", MODES)


def test_alias_bombs_are_bounded() -> None:
    """Ten aliases of ten aliases ...: a few hundred bytes of YAML, a million values once expanded."""
    levels = ["l0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    text = "name: w\nnodes:\n  - id: a\n    mode: echo\n    input:\n      value:\n"
    text += textwrap.indent("\n".join(levels), " " * 8)
    with pytest.raises(InvalidInput, match="more than 100000 values") as info:
        load_workflow(text, MODES)
    assert info.value.details["node"] == "a" and info.value.details["field"] == "input"


def test_dollar_text_that_is_not_a_reference_is_left_alone() -> None:
    wf = load("""
        name: w
        model: ollama/m
        nodes:
          - {id: a, prompt: "Costs $5, see $HOME.rc and JSONPath $.items, $$a.output is escaped"}
    """)
    assert wf.nodes["a"].prompt.refs == []
    assert "".join(wf.nodes["a"].prompt.parts) == "Costs $5, see $HOME.rc and JSONPath $.items, $a.output is escaped"


def test_provider_on_a_node_prefixes_its_bare_model_and_agrees_with_its_own() -> None:
    wf = load("""
        name: w
        model: tier:fast
        nodes:
          - {id: a, prompt: hi}
          - {id: b, prompt: hi, provider: kimi, model: kimi-for-coding}
          - {id: c, prompt: hi, provider: openrouter, model: openrouter/v/m}
          - {id: d, prompt: hi, provider: ollama_cloud}
    """)
    assert [n.model for n in wf.nodes.values()] == ["tier:fast", "kimi/kimi-for-coding", "openrouter/v/m", "tier:fast"]

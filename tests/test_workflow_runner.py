"""Running workflows: order, references, concurrency, conditions, trigger rules, retries, outputs, resume.

Prompt nodes go through the real ChatDispatcher to a loopback server (which answers "echo: <last
user message>" unless scripted); mode nodes go to the in-process TestModes catalog.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from llm_servers import llm_fixture  # noqa: F401  (fixtures)
from workflow_doubles import Harness, harness_fixture  # noqa: F401  (fixtures)

from lakehouse.engine.workflows import RunRecord
from lakehouse.errors import Conflict, InvalidInput, NotFound


def run(wf: Harness, text: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> RunRecord:
    return wf.runner.run(textwrap.dedent(text), inputs, **kwargs)


def statuses(record: RunRecord) -> dict[str, str]:
    return {n: r.status for n, r in record.nodes.items()}


ESSAY = """
    name: essay-review
    description: Archon-shaped three-step review
    provider: openrouter
    model: vendor/writer
    nodes:
      - id: shape
        prompt: "Describe the shape of: $input.essay"
      - id: weakness
        prompt: "Find the weakness in: $shape.output"
        depends_on: [shape]
      - id: improvement
        prompt: "Suggest an improvement for: $.output"
        depends_on: [weakness]
"""


def test_g3_8_a_prompt_nodes_run_in_order_each_receiving_the_previous_output(wf: Harness) -> None:
    record = run(wf, ESSAY, {"essay": "Cats sleep."})
    assert record.status == "succeeded" and record.error is None
    prompts = [r.body["messages"][-1]["content"] for r in wf.srv.requests]
    assert prompts == [
        "Describe the shape of: Cats sleep.",
        "Find the weakness in: echo: Describe the shape of: Cats sleep.",
        "Suggest an improvement for: echo: Find the weakness in: echo: Describe the shape of: Cats sleep.",
    ]
    assert all(r.path == "/openrouter/api/v1/chat/completions" and r.body["model"] == "vendor/writer"
               for r in wf.srv.requests)
    assert record.nodes["improvement"].output == "echo: " + prompts[2]
    shape, weakness, improvement = record.nodes.values()
    assert shape.finished_at <= weakness.started_at and weakness.finished_at <= improvement.started_at
    assert weakness.input == {"model": "openrouter/vendor/writer", "prompt": prompts[1]}
    # every call carries the workflow, node and run ids, and its op id lands on the node
    assert [(c.workflow, c.node, c.run_id) for c in wf.llm.calls] == [
        ("essay-review", n, record.run_id) for n in ("shape", "weakness", "improvement")]
    assert all(len(r.op_ids) == 1 and r.attempts == 1 for r in record.nodes.values())


def test_runs_are_persisted_in_the_lake(wf: Harness) -> None:
    record = run(wf, """
        name: persisted
        nodes:
          - {id: a, mode: math.add, input: {a: $input.x, b: 2}}
          - {id: b, mode: echo, input: {value: {total: $a.output.sum, label: "sum=$a.output.sum"}}, depends_on: [a]}
    """, {"x": 40})
    runs = wf.lake.sql("SELECT workflow, yaml_sha256, status, input, started_at <= finished_at, error "
                       "FROM lake.lh.workflow_runs WHERE run_id = ?", params=[record.run_id]).fetchall()
    assert runs == [("persisted", record.yaml_sha256, "succeeded", '{"x": 40}', True, None)]
    rows = wf.lake.sql("SELECT node_id, status, attempts, input, output, error_code, op_ids FROM lake.lh.workflow_nodes "
                       "WHERE run_id = ? ORDER BY node_id", params=[record.run_id]).fetchall()
    op_ids = {c.node: c.op_id for c in wf.modes.calls}
    assert [(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], json.loads(r[6])) for r in rows] == [
        ("a", "succeeded", 1, {"a": 40, "b": 2}, {"sum": 42}, None, [op_ids["a"]]),
        ("b", "succeeded", 1, {"value": {"total": 42, "label": "sum=42"}}, {"total": 42, "label": "sum=42"}, None,
         [op_ids["b"]]),
    ]
    assert [(c.workflow, c.node, c.run_id) for c in wf.modes.calls] == [("persisted", "a", record.run_id),
                                                                       ("persisted", "b", record.run_id)]
    assert wf.runner.get(record.run_id).to_dict() == record.to_dict()


def test_g3_8_c_missing_field_fails_the_node_naming_node_and_reference(wf: Harness) -> None:
    record = run(wf, """
        name: missing-field
        model: ollama/m
        nodes:
          - {id: classify, mode: echo, input: {value: {kind: bug}}}
          - {id: act, prompt: "Handle a $classify.output.severity issue", depends_on: [classify]}
          - {id: after, mode: echo, input: {value: $act.output}, depends_on: [act]}
    """)
    assert record.status == "failed" and statuses(record) == {"classify": "succeeded", "act": "failed",
                                                              "after": "skipped"}
    act = record.nodes["act"]
    assert act.error_code == "missing_reference"
    assert act.error_message == ("node 'act': reference $classify.output.severity cannot be resolved: the output of "
                                 "'classify' has no field 'severity' (fields: kind)")
    assert wf.srv.requests == []  # nothing was sent with an empty string in its place
    assert record.error == f"node 'act' failed: {act.error_message}"
    assert record.nodes["after"].error_code == "trigger_rule"


def test_missing_run_input_is_refused_before_anything_runs(wf: Harness) -> None:
    with pytest.raises(InvalidInput, match=r"node 'b' reads \$input.topic, but the run has no input 'topic'") as info:
        run(wf, """
            name: needs-input
            nodes:
              - {id: a, mode: echo, input: {value: 1}}
              - {id: b, mode: echo, input: {value: $input.topic}, depends_on: [a]}
        """, {"other": 1})
    assert info.value.details == {"node": "b", "reference": "$input.topic"} and wf.modes.calls == []


def test_resolved_input_is_checked_against_the_mode_schema(wf: Harness) -> None:
    record = run(wf, """
        name: typed
        nodes:
          - {id: a, mode: echo, input: {value: "seven"}}
          - {id: b, mode: math.add, input: {a: $a.output, b: 1}, depends_on: [a]}
    """)
    b = record.nodes["b"]
    assert b.status == "failed" and b.error_code == "invalid_operation_input"
    assert "input of 'math.add' does not match its schema at a: 'seven' is not of type 'number'" in b.error_message
    assert wf.modes.count(node="b") == 0


# -- concurrency ----------------------------------------------------------------------------------

PAIR = """
    name: pair
    nodes:
      - {{id: a, mode: meet, input: {{name: a, group: g, size: 2, wait_s: {wait}}}}}
      - {{id: b, mode: meet, input: {{name: b, group: g, size: 2, wait_s: {wait}}}}}
      - {{id: c, mode: echo, input: {{value: [$a.output, $b.output]}}, depends_on: [a, b]}}
"""


def test_independent_nodes_overlap_with_max_parallel_2(wf: Harness) -> None:
    # `meet` returns once both calls have started: only concurrent execution gets both starts before an end
    record = run(wf, PAIR.format(wait=30), max_parallel=2)
    assert record.status == "succeeded" and record.nodes["c"].output == ["a", "b"]
    assert sorted(wf.modes.events[:2]) == [("start", "a"), ("start", "b")]
    a, b = record.nodes["a"], record.nodes["b"]
    assert a.started_at <= b.finished_at and b.started_at <= a.finished_at  # the stored records overlap too


def test_max_parallel_1_runs_one_node_at_a_time(wf: Harness) -> None:
    record = run(wf, PAIR.format(wait=0.2), max_parallel=1)  # each call waits for a partner in vain
    assert record.status == "succeeded"
    assert wf.modes.events == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]
    assert record.nodes["a"].finished_at <= record.nodes["b"].started_at


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_max_parallel_is_refused(wf: Harness, value: Any) -> None:
    with pytest.raises(InvalidInput, match="max_parallel must be an integer >= 1"):
        run(wf, "name: w\nnodes: [{id: a, mode: echo, input: {value: 1}}]", max_parallel=value)


# -- when and trigger rules --------------------------------------------------------------------------

def test_when_skips_and_trigger_rules_decide_over_skipped_branches(wf: Harness) -> None:
    record = run(wf, """
        name: route
        nodes:
          - {id: classify, mode: echo, input: {value: {kind: bug, score: "87"}}}
          - {id: bug, mode: echo, input: {value: fixing}, depends_on: [classify],
             when: "$classify.output.kind == 'bug' and $classify.output.score > 80"}
          - {id: feature, mode: echo, input: {value: planning}, depends_on: [classify],
             when: "$classify.output.kind in ['feature', 'idea']"}
          - {id: either, mode: echo, input: {value: $bug.output}, depends_on: [bug, feature], trigger_rule: one_success}
          - {id: both, mode: echo, input: {value: 1}, depends_on: [bug, feature]}
          - {id: no_failures, mode: echo, input: {value: 2}, depends_on: [bug, feature],
             trigger_rule: none_failed_min_one_success}
          - {id: finally, mode: echo, input: {value: 3}, depends_on: [both, feature], trigger_rule: all_done}
    """)
    assert statuses(record) == {"classify": "succeeded", "bug": "succeeded", "feature": "skipped",
                                "either": "succeeded", "both": "skipped", "no_failures": "succeeded",
                                "finally": "succeeded"}
    assert record.status == "succeeded" and record.nodes["either"].output == "fixing"
    feature, both = record.nodes["feature"], record.nodes["both"]
    assert feature.error_code == "when_false" and "kind in ['feature', 'idea']" in feature.error_message
    assert both.error_code == "trigger_rule"
    assert both.error_message == "trigger_rule all_success not met: bug succeeded, feature skipped"
    assert wf.modes.count(node="feature") == 0 and wf.modes.count(node="both") == 0


def test_trigger_rules_after_a_failure(wf: Harness) -> None:
    record = run(wf, """
        name: after-failure
        nodes:
          - {id: broken, mode: fail_n_times, input: {key: trf, n: 9}}
          - {id: fine, mode: echo, input: {value: ok}}
          - {id: all_success, mode: echo, input: {value: 1}, depends_on: [broken, fine]}
          - {id: one_success, mode: echo, input: {value: 2}, depends_on: [broken, fine], trigger_rule: one_success}
          - {id: none_failed, mode: echo, input: {value: 3}, depends_on: [broken, fine],
             trigger_rule: none_failed_min_one_success}
          - {id: all_done, mode: echo, input: {value: 4}, depends_on: [broken, fine], trigger_rule: all_done}
          - {id: cleanup, mode: echo, input: {value: 5}, depends_on: [broken], trigger_rule: all_done}
    """)
    assert statuses(record) == {"broken": "failed", "fine": "succeeded", "all_success": "skipped",
                                "one_success": "succeeded", "none_failed": "skipped", "all_done": "succeeded",
                                "cleanup": "succeeded"}
    assert record.status == "failed" and record.error == "node 'broken' failed: failure 1 of 9"
    assert record.nodes["broken"].error_code == "storage_error" and record.nodes["broken"].op_ids == ["failed-trf-1"]


def test_a_when_that_cannot_be_evaluated_fails_its_node(wf: Harness) -> None:
    record = run(wf, """
        name: bad-when
        nodes:
          - {id: a, mode: echo, input: {value: {kind: bug}}}
          - {id: b, mode: echo, input: {value: 1}, depends_on: [a], when: "$a.output.severity == 'high'"}
          - {id: c, mode: echo, input: {value: 1}, depends_on: [a], when: "$a.output.kind > 3"}
    """)
    b, c = record.nodes["b"], record.nodes["c"]
    assert b.status == "failed" and b.error_code == "missing_reference" and "$a.output.severity" in b.error_message
    assert c.status == "failed" and c.error_code == "bad_condition" and "cannot order" in c.error_message


# -- retries -----------------------------------------------------------------------------------------

def test_retry_until_success_with_doubling_delay(wf: Harness) -> None:
    record = run(wf, """
        name: flaky
        nodes:
          - {id: flaky, mode: fail_n_times, input: {key: r1, n: 2}, retry: {max_attempts: 2, delay_ms: 10}}
    """)
    flaky = record.nodes["flaky"]
    assert record.status == "succeeded" and flaky.output == "ok" and flaky.attempts == 3
    assert wf.slept == [0.01, 0.02]
    assert flaky.op_ids[:2] == ["failed-r1-1", "failed-r1-2"] and len(flaky.op_ids) == 3  # failed calls are kept
    assert wf.modes.count(node="flaky") == 3


def test_retries_run_out(wf: Harness) -> None:
    record = run(wf, """
        name: flaky
        nodes:
          - {id: flaky, mode: fail_n_times, input: {key: r2, n: 2}, retry: {max_attempts: 1, delay_ms: 0}}
    """)
    flaky = record.nodes["flaky"]
    assert flaky.status == "failed" and flaky.attempts == 2 and flaky.error_message == "failure 2 of 2"


def test_only_transient_errors_are_retried_unless_on_error_all(wf: Harness) -> None:
    record = run(wf, """
        name: invalid
        nodes:
          - {id: default, mode: fail_n_times, input: {key: r3, n: 1, error: invalid}, retry: {max_attempts: 3}}
          - {id: all, mode: fail_n_times, input: {key: r4, n: 1, error: invalid},
             retry: {max_attempts: 3, delay_ms: 0, on_error: all}}
    """)
    assert record.nodes["default"].status == "failed" and record.nodes["default"].attempts == 1
    assert record.nodes["all"].status == "succeeded" and record.nodes["all"].attempts == 2


def test_a_mode_raising_a_plain_exception_fails_only_its_node(wf: Harness) -> None:
    record = run(wf, """
        name: buggy
        nodes:
          - {id: buggy, mode: sleep, input: {seconds: -1}}
          - {id: other, mode: echo, input: {value: fine}}
    """)
    assert statuses(record) == {"buggy": "failed", "other": "succeeded"}
    assert record.nodes["buggy"].error_code == "internal" and "ValueError" in record.nodes["buggy"].error_message


def test_a_runner_stopped_mid_run_leaves_the_run_failed(wf: Harness) -> None:
    def interrupt(_: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    wf.modes._table["interrupt"] = (wf.modes._table["echo"][0], interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(wf, "name: stop\nnodes: [{id: a, mode: interrupt, input: {value: 1}}]")
    (status, error), = wf.lake.sql("SELECT status, error FROM lake.lh.workflow_runs").fetchall()
    assert status == "failed" and error == "the runner stopped: KeyboardInterrupt: "


# -- outputs -----------------------------------------------------------------------------------------

SCHEMA_NODE = """
    name: structured
    model: kimi/k2
    nodes:
      - id: classify
        prompt: "Classify: $input.text"
        output_format: json
        output_schema: {type: object, required: [kind], properties: {kind: {enum: [bug, feature]}}}
      - {id: use, mode: echo, input: {value: $classify.output.kind}, depends_on: [classify]}
"""


def test_json_output_is_parsed_and_checked(wf: Harness) -> None:
    wf.srv.reply_fn = lambda messages: '```json\n{"kind": "bug", "why": "crash"}\n```'
    record = run(wf, SCHEMA_NODE, {"text": "it crashes"})
    assert record.status == "succeeded"
    assert record.nodes["classify"].output == {"kind": "bug", "why": "crash"} and record.nodes["use"].output == "bug"
    system = wf.srv.requests[0].body["messages"][0]
    assert system["role"] == "system" and '"required": ["kind"]' in system["content"]


@pytest.mark.parametrize(("answer", "code", "message"), [
    ('{"kind": "question"}', "output_schema_mismatch", "output does not match output_schema at kind: 'question' is not"),
    ('{"why": "?"}', "output_schema_mismatch", "'kind' is a required property"),
    ("It is a bug.", "invalid_output", "not JSON: 'It is a bug.'"),
])
def test_json_output_that_breaks_the_format_fails_the_node(wf: Harness, answer: str, code: str, message: str) -> None:
    wf.srv.reply_fn = lambda messages: answer
    record = run(wf, SCHEMA_NODE, {"text": "?"})
    classify = record.nodes["classify"]
    assert classify.status == "failed" and classify.error_code == code and message in classify.error_message
    assert classify.error_message.startswith("node 'classify': ") and record.nodes["use"].status == "skipped"


def test_archon_output_format_schema_and_text_format_on_a_mode(wf: Harness) -> None:
    record = run(wf, """
        name: formats
        nodes:
          - {id: a, mode: echo, input: {value: {n: 1}}, output_format: {type: object, required: [n]}}
          - {id: b, mode: echo, input: {value: {n: 1}}, output_format: text}
    """)
    assert record.nodes["a"].output == {"n": 1} and record.nodes["b"].output == '{"n": 1}'


def test_idle_timeout_and_effort_reach_the_llm(wf: Harness) -> None:
    run(wf, """
        name: knobs
        nodes: [{id: a, prompt: hi, model: tier:fast, idle_timeout: 2500, effort: low}]
    """)
    call = wf.llm.calls[0]
    assert (call.model, call.timeout_s, call.effort, call.tools) == ("tier:fast", 2.5, "low", None)
    assert wf.srv.requests[0].body["model"] == "vendor/fast"


def test_provider_failure_fails_the_node_and_is_transient(wf: Harness) -> None:
    wf.srv.fail(503, times=1)
    record = run(wf, """
        name: provider
        nodes: [{id: a, prompt: hi, model: ollama/m, retry: {max_attempts: 1, delay_ms: 0}}]
    """)
    assert record.nodes["a"].status == "succeeded" and record.nodes["a"].attempts == 2
    assert len(record.nodes["a"].op_ids) == 1  # the failed call raised before an LLMReply (and its op id) existed


# -- resume ------------------------------------------------------------------------------------------

RESUMABLE = """
    name: resumable
    nodes:
      - {id: fetch, mode: echo, input: {value: $input.doc}}
      - {id: flaky, mode: fail_n_times, input: {key: $input.key, n: 1}, depends_on: [fetch]}
      - {id: side, mode: echo, input: {value: side}}
      - {id: report, mode: echo, input: {value: "$fetch.output / $flaky.output"}, depends_on: [flaky, side]}
"""


def test_resume_reuses_finished_nodes_and_reruns_the_rest(wf: Harness) -> None:
    first = run(wf, RESUMABLE, {"doc": "d1", "key": "resume-1"})
    assert first.status == "failed"
    assert statuses(first) == {"fetch": "succeeded", "flaky": "failed", "side": "succeeded", "report": "skipped"}
    second = run(wf, RESUMABLE, resume=first.run_id)
    assert second.run_id == first.run_id and second.status == "succeeded" and second.error is None
    assert statuses(second) == {n: "succeeded" for n in ("fetch", "flaky", "side", "report")}
    assert second.nodes["report"].output == "d1 / ok"
    assert wf.modes.count(node="fetch") == 1 and wf.modes.count(node="side") == 1  # not re-run
    assert wf.modes.count(node="flaky") == 2 and wf.modes.count(node="report") == 1
    assert second.nodes["fetch"].op_ids == first.nodes["fetch"].op_ids
    assert second.finished_at > first.finished_at
    with pytest.raises(Conflict, match="is succeeded; only a failed or interrupted run can be resumed"):
        run(wf, RESUMABLE, resume=first.run_id)


def test_resume_refuses_a_changed_yaml_other_inputs_and_unknown_runs(wf: Harness) -> None:
    first = run(wf, RESUMABLE, {"doc": "d2", "key": "resume-2"})
    with pytest.raises(Conflict, match="was made from another YAML") as info:
        run(wf, RESUMABLE.replace("side}}", "side!}}"), resume=first.run_id)
    assert info.value.code == "workflow_changed"
    with pytest.raises(Conflict, match="resumes with the inputs it started with"):
        run(wf, RESUMABLE, {"doc": "other", "key": "resume-2"}, resume=first.run_id)
    with pytest.raises(NotFound, match="no workflow run 'nope'"):
        run(wf, RESUMABLE, resume="nope")
    assert wf.modes.count(node="flaky") == 1  # none of these ran anything
    assert run(wf, RESUMABLE, {"doc": "d2", "key": "resume-2"}, resume=first.run_id).status == "succeeded"

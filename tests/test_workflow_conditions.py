"""The `when:` language and output references, evaluated without running anything."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.engine.workflows.conditions import ConditionError, parse_condition
from lakehouse.engine.workflows.refs import Ref, Scope, Template, compile_text, compile_value
from lakehouse.errors import Unprocessable

NODES = ("classify", "score", "fetch-issue", "review")
OUTPUTS: dict[str, Any] = {
    "classify": {"kind": "bug", "labels": ["ui", "urgent"], "count": 3, "ok": True, "none": None},
    "score": "87",
    "fetch-issue": '{"title": "Crash on save", "number": 42}',
    "review": "looks fine",
}
INPUTS = {"force": False, "limit": 10, "who": {"name": "ana"}}


def scope(node: str = "n", upstream: str | None = None) -> Scope:
    return Scope(node, OUTPUTS, INPUTS, upstream, {"review": "succeeded", "skipped": "skipped"})


def when(text: str) -> bool:
    return parse_condition(text, NODES).evaluate(scope().resolve)


@pytest.mark.parametrize(("text", "expected"), [
    ("$classify.output.kind == 'bug'", True),
    ("$classify.output.kind != 'bug'", False),
    ('$classify.output.kind == "feature"', False),
    ("$classify.output.count == 3 and $classify.output.count >= 3", True),
    ("$classify.output.count == '3'", True),  # Archon compares text
    ("$classify.output.ok == true and $classify.output.ok == 'true'", True),
    ("$classify.output.ok == 1", False),  # a boolean is not a number
    ("$score.output > 80", True),  # a numeric text output compares as a number
    ("$score.output > '9'", True),  # both numeric: 87 > 9, not '87' > '9' as text
    ("$score.output < 80 || $review.output == 'looks fine'", True),
    ("$score.output < 80 && $review.output == 'looks fine'", False),
    ("not $input.force", True),
    ("!$input.force and $input.limit <= 10", True),
    ("$classify.output.kind in ['bug', 'regression']", True),
    ("$classify.output.kind not in ['bug', 'regression']", False),
    ("'urgent' in $classify.output.labels", True),
    ("'fine' in $review.output", True),
    ("'kind' in $classify.output", True),
    ("$fetch-issue.output.number == 42", True),  # hyphenated ids, JSON text read as JSON
    ("${fetch-issue.output.title} == 'Crash on save'", True),
    ("$classify.output.none == null", True),
    ("$classify.output.labels", True),  # truthiness
    ("$input.limit > -1 and ($input.force or $classify.output.count == 3)", True),
    ("'apple' < 'banana'", True),
    ("$input.who.name == 'ana'", True),
    ("$classify.output.labels.1 == 'urgent'", True),
])
def test_conditions(text: str, expected: bool) -> None:
    assert when(text) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "value was expected"),
    ("$classify.output.kind ==", "value was expected"),
    ("$classify.output.kind = 'bug'", "unexpected character '='"),
    ("kind == 'bug'", "unknown word 'kind'"),
    ("open('x')", "unknown word 'open'"),
    ("$classify.output.kind == 'bug')", "unexpected ')'"),
    ("($classify.output.kind == 'bug'", "expected ')'"),
    ("$classify.outptu == 1", "not its output"),
    ("$nothing.output == 1", "not a reference"),
    ("$classify.output.kind == 'bug' 'extra'", "after a complete condition"),
    ("'a' * 3", "unexpected character '*'"),
    ("-'a' == 1", "followed by a number"),
    ("1 == 1" + " and 1 == 1" * 300, "longer than"),
])
def test_malformed_conditions(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_condition(text, NODES)


@pytest.mark.parametrize(("text", "message"), [
    ("$classify.output.kind > 3", "cannot order"),
    ("3 in $classify.output.count", "cannot test"),
])
def test_conditions_that_cannot_be_evaluated_raise(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        when(text)


def test_condition_lists_its_references() -> None:
    cond = parse_condition("$classify.output.kind == 'bug' or $input.force or $.output", NODES)
    assert [(r.kind, r.name, r.path) for r in cond.refs] == [
        ("node", "classify", ("kind",)), ("input", "force", ()), ("upstream", None, ())]


# -- references ---------------------------------------------------------------------------------


def test_text_references_render_strings_as_is_and_values_as_json() -> None:
    t = compile_text("Kind: $classify.output.kind; labels: $classify.output.labels; all: ${review.output}.", NODES)
    assert scope().render(t) == 'Kind: bug; labels: ["ui", "urgent"]; all: looks fine.'


def test_a_value_that_is_one_reference_keeps_its_type() -> None:
    compiled = compile_value({"labels": "$classify.output.labels", "n": "$input.limit", "text": "n=$input.limit",
                              "nested": [{"who": "$input.who"}], "plain": 3}, NODES)
    assert isinstance(compiled["labels"], Ref) and isinstance(compiled["text"], Template)
    assert scope().value(compiled) == {"labels": ["ui", "urgent"], "n": 10, "text": "n=10",
                                       "nested": [{"who": {"name": "ana"}}], "plain": 3}


def test_single_upstream_reference() -> None:
    assert scope(upstream="review").render(compile_text("got: $.output", NODES)) == "got: looks fine"


@pytest.mark.parametrize(("text", "message"), [
    ("$classify.output.severity", "has no field 'severity' (fields: kind, labels, count, ok, none)"),
    ("$classify.output.labels.5", "has 2 items: no index 5"),
    ("$classify.output.kind.first", "at 'kind' is text, not JSON: it has no field 'first'"),
    ("$classify.output.count.x", "is a number: it has no field 'x'"),
    ("$review.output.verdict", "is text, not JSON"),
    ("$input.missing", "the run has no input 'missing' (inputs: force, limit, who)"),
    ("$input.who.age", "has no field 'age'"),
])
def test_a_missing_field_is_an_error_naming_node_and_reference(text: str, message: str) -> None:
    ref = compile_text(text, NODES).refs[0]
    with pytest.raises(Unprocessable) as info:
        scope("writer").resolve(ref)
    err = info.value
    assert err.code == "missing_reference" and err.details == {"node": "writer", "reference": text}
    assert err.message.startswith(f"node 'writer': reference {text} cannot be resolved") and message in err.message


def test_a_node_without_output_is_an_error_not_an_empty_string() -> None:
    nodes = (*NODES, "skipped")
    with pytest.raises(Unprocessable, match=r"reference \$skipped.output cannot be resolved: node 'skipped' has no "
                                            r"output \(it is skipped\)"):
        scope("writer").render(compile_text("x $skipped.output y", nodes))

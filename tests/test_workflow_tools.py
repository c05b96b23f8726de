"""Tool calls over real HTTP: the dispatcher's `tools=` on both wires, and LLM nodes calling operations."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from llm_servers import LLMServer, ToolCalls, llm_fixture, provider_settings, srv_fixture, tool_turns  # noqa: F401
from workflow_doubles import FAST, KEYS, Harness, harness_fixture  # noqa: F401  (fixtures)

from lakehouse.engine.chat import ChatDispatcher
from lakehouse.engine.workflows import RunRecord
from lakehouse.engine.workflows.tools import to_function_name, to_operation
from lakehouse.errors import InvalidInput, ProviderError
from lakehouse.settings import Settings

ADD_TOOL = {"type": "function", "function": {
    "name": "math__add", "description": "Add two numbers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}


@pytest.fixture
def chat(srv: LLMServer) -> Iterator[ChatDispatcher]:
    settings = Settings.load(env={}, **provider_settings(srv.url))
    with ChatDispatcher(settings, env=KEYS, policy=FAST) as dispatcher:
        yield dispatcher


def adder(messages: list[dict[str, Any]]) -> str | ToolCalls:
    """A model that asks for math__add once, then answers with the tool's result."""
    results = tool_turns(messages)
    if not results:
        return ToolCalls([{"name": "math__add", "arguments": {"a": 2, "b": 3}}], content="Let me add.")
    return f"The sum is {json.loads(results[-1]['content'])['sum']}."


@pytest.mark.parametrize(("model", "wire"), [("openrouter/v/m", "openai"), ("ollama/m", "ollama")])
def test_dispatcher_tool_round_trip(srv: LLMServer, chat: ChatDispatcher, model: str, wire: str) -> None:
    srv.reply_fn = adder
    first = chat.chat(model, prompt="What is 2 + 3?", tools=[ADD_TOOL])
    assert first.content == "Let me add." and [(c["name"], c["arguments"]) for c in first.tool_calls] == [
        ("math__add", {"a": 2, "b": 3})]
    assert srv.bodies()[0]["tools"] == [ADD_TOOL]
    messages = [{"role": "user", "content": "What is 2 + 3?"},
                {"role": "assistant", "content": first.content, "tool_calls": first.tool_calls},
                {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "content": json.dumps({"sum": 5})}]
    second = chat.chat(model, messages, tools=[ADD_TOOL])
    assert second.content == "The sum is 5." and second.tool_calls == []
    assert first.to_dict()["tool_calls"] == first.tool_calls and "tool_calls" not in second.to_dict()
    sent = srv.bodies()[1]["messages"]
    if wire == "openai":  # arguments as a JSON string, the result tied to the call's id
        assert sent[1]["tool_calls"] == [{"id": first.tool_calls[0]["id"], "type": "function",
                                          "function": {"name": "math__add", "arguments": '{"a": 2, "b": 3}'}}]
        assert sent[2] == {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "content": '{"sum": 5}'}
    else:  # Ollama: arguments as an object, the result named by tool
        assert sent[1]["tool_calls"] == [{"function": {"name": "math__add", "arguments": {"a": 2, "b": 3}}}]
        assert sent[2] == {"role": "tool", "content": '{"sum": 5}', "tool_name": "math__add"}


def test_openai_shaped_tool_calls_in_history_are_accepted(srv: LLMServer, chat: ChatDispatcher) -> None:
    history = [{"role": "user", "content": "add"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "math__add", "arguments": '{"a": 1}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "1"}]
    chat.chat("kimi/k", history, tools=[ADD_TOOL])
    assert srv.bodies()[-1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tools": [{"type": "function", "function": {"name": "matrix.search"}}]}, "must match"),
    ({"tools": [{"name": "x"}]}, "must be {type: 'function'"),
    ({"tools": {"type": "function"}}, "must be a list"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "name": "f",
                                                                          "arguments": "{oops"}]}]}, "not JSON"),
])
def test_bad_tools_and_tool_turns_are_refused_before_a_round_trip(srv: LLMServer, chat: ChatDispatcher,
                                                                 kwargs: dict[str, Any], message: str) -> None:
    messages = kwargs.pop("messages", None)
    with pytest.raises(InvalidInput, match=message):
        chat.chat("ollama/m", messages, prompt="x", **kwargs)
    assert srv.requests == []


def test_malformed_tool_call_from_the_provider_is_a_provider_error(srv: LLMServer, chat: ChatDispatcher) -> None:
    srv.fail(200, {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "math__add", "arguments": "{not json"}}]}}]})
    with pytest.raises(ProviderError, match="tool call arguments that are not JSON"):
        chat.chat("openrouter/v/m", prompt="x", tools=[ADD_TOOL])


def test_operation_names_travel_as_function_names() -> None:
    assert to_function_name("matrix.search") == "matrix__search" and to_operation("matrix__search") == "matrix.search"


# -- LLM nodes calling operations ------------------------------------------------------------------

TOOLS_NODE = """
    name: tools
    model: {model}
    nodes:
      - id: solve
        prompt: "What is 2 + 3? $input.hint"
        allowed_tools: [math.add, echo]
"""


def run_tools(wf: Harness, model: str = "openrouter/v/m", **kwargs: Any) -> RunRecord:
    return wf.runner.run(textwrap.dedent(TOOLS_NODE.format(model=model)), {"hint": "Use the tools."}, **kwargs)


@pytest.mark.parametrize("model", ["openrouter/v/m", "ollama/m"])
def test_llm_node_calls_an_operation_then_answers(wf: Harness, model: str) -> None:
    wf.srv.reply_fn = adder
    record = run_tools(wf, model)
    solve = record.nodes["solve"]
    assert record.status == "succeeded" and solve.output == "The sum is 5."
    offered = wf.srv.requests[0].body["tools"]
    assert [t["function"]["name"] for t in offered] == ["math__add", "echo"]
    assert offered[0]["function"]["parameters"]["required"] == ["a", "b"]
    assert [(c.mode, c.input, c.node, c.run_id) for c in wf.modes.calls] == [
        ("math.add", {"a": 2, "b": 3}, "solve", record.run_id)]
    # two chat calls and the operation, in order
    assert len(solve.op_ids) == 3 and solve.op_ids[1] == wf.modes.calls[0].op_id
    assert len(wf.srv.requests) == 2


def test_a_tool_the_node_was_not_offered_is_answered_with_an_error(wf: Harness) -> None:
    def model(messages: list[dict[str, Any]]) -> str | ToolCalls:
        results = tool_turns(messages)
        if not results:
            return ToolCalls([{"name": "shell__exec", "arguments": {"cmd": "ls"}},
                              {"name": "math__add", "arguments": {"a": "two", "b": 3}}])
        return "errors: " + " | ".join(json.loads(r["content"])["error"]["code"] for r in results)

    wf.srv.reply_fn = model
    record = run_tools(wf)
    assert record.nodes["solve"].output == "errors: tool_not_allowed | invalid_operation_input"
    assert wf.modes.calls == []  # neither reached an operation


def test_tool_rounds_are_limited(wf: Harness) -> None:
    wf.srv.reply_fn = lambda messages: ToolCalls([{"name": "echo", "arguments": {"value": len(messages)}}])
    record = run_tools(wf, max_tool_rounds=2)
    solve = record.nodes["solve"]
    assert solve.status == "failed" and solve.error_code == "tool_rounds_exceeded"
    assert solve.error_message == ("node 'solve': the model still asked for tools after 2 rounds "
                                   "(the limit, max_tool_rounds=2)")
    assert len(wf.srv.requests) == 3 and wf.modes.count(mode="echo") == 2 and len(solve.op_ids) == 5


def test_default_rounds_limit_is_5(wf: Harness) -> None:
    wf.srv.reply_fn = lambda messages: ToolCalls([{"name": "echo", "arguments": {"value": 1}}])
    record = run_tools(wf)
    assert record.nodes["solve"].error_code == "tool_rounds_exceeded" and len(wf.srv.requests) == 6


def test_operation_names_that_cannot_be_function_names_are_refused_at_load(wf: Harness) -> None:
    wf.modes._table["bad__name"] = wf.modes._table["echo"]
    with pytest.raises(InvalidInput, match="cannot be offered as a tool") as info:
        wf.runner.load("name: w\nmodel: ollama/m\nnodes: [{id: a, prompt: hi, allowed_tools: [bad__name]}]")
    assert info.value.details == {"node": "a", "field": "allowed_tools"}

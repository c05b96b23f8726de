"""In-process implementations of the runner's two interfaces, for the workflow tests.

Test modules import the fixtures: `from workflow_doubles import harness_fixture  # noqa: F401` and
`from llm_servers import llm_fixture  # noqa: F401` (the module's loopback server).

`TestModes` is a small operations catalog (echo, add, fail_n_times, sleep, meet) that counts and
logs its calls; `DispatcherLLM` is the LLM interface over the real ChatDispatcher, so prompt nodes
go over HTTP to a loopback server (tests/llm_servers.py).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from llm_servers import LLMServer, provider_settings

from lakehouse import Lake
from lakehouse.engine.chat import ChatDispatcher, ChatPolicy
from lakehouse.engine.workflows import LLMReply, ModeInfo, ModeResult, RunStore, WorkflowRunner
from lakehouse.errors import InvalidInput, StorageError
from lakehouse.settings import Settings

OBJECT = {"type": "object"}


@dataclasses.dataclass
class Call:
    mode: str
    input: dict[str, Any]
    workflow: str
    node: str
    run_id: str
    op_id: str


class TestModes:
    """A ModeDispatcher with a handful of modes; thread-safe, every call logged in `calls`."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.events: list[tuple[str, str]] = []  # ("start" | "end", name) of `meet` calls, in order
        self._failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._met = threading.Condition(self._lock)
        self._arrived: Counter[str] = Counter()
        self._table: dict[str, tuple[ModeInfo, Callable[[dict[str, Any]], Any]]] = {
            "echo": (ModeInfo("Return the input unchanged.", {
                "type": "object", "properties": {"value": {}}, "required": ["value"], "additionalProperties": False,
            }), lambda i: i["value"]),
            "math.add": (ModeInfo("Add two numbers.", {
                "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"], "additionalProperties": False,
            }), lambda i: {"sum": i["a"] + i["b"]}),
            "fail_n_times": (ModeInfo("Fail `n` times per key, then return 'ok'.", {
                "type": "object", "properties": {"key": {"type": "string"}, "n": {"type": "integer"},
                                                 "error": {"enum": ["transient", "invalid"]}},
                "required": ["key", "n"],
            }), self._fail_n_times),
            "sleep": (ModeInfo("Sleep `seconds`, return them.", {
                "type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"],
            }), lambda i: time.sleep(i["seconds"]) or i["seconds"]),
            "meet": (ModeInfo("Log start, wait until `size` calls of `group` started (at most wait_s), log end.", {
                "type": "object", "properties": {"name": {"type": "string"}, "group": {"type": "string"},
                                                 "size": {"type": "integer"}, "wait_s": {"type": "number"}},
                "required": ["name", "group", "size", "wait_s"],
            }), self._meet),
        }

    def modes(self) -> Mapping[str, ModeInfo]:
        return {name: info for name, (info, _) in self._table.items()}

    def run(self, mode: str, input: dict[str, Any], *, workflow: str, node: str, run_id: str) -> ModeResult:
        op_id = uuid.uuid4().hex
        with self._lock:
            self.calls.append(Call(mode, input, workflow, node, run_id, op_id))
        return ModeResult(self._table[mode][1](input), op_id)

    def count(self, node: str | None = None, mode: str | None = None) -> int:
        return sum((node is None or c.node == node) and (mode is None or c.mode == mode) for c in self.calls)

    def _fail_n_times(self, i: dict[str, Any]) -> str:
        with self._lock:
            self._failures[i["key"]] += 1
            seen = self._failures[i["key"]]
        if seen <= i["n"]:
            if i.get("error") == "invalid":
                raise InvalidInput(f"failure {seen} of {i['n']}", op_id=f"failed-{i['key']}-{seen}")
            raise StorageError(f"failure {seen} of {i['n']}", op_id=f"failed-{i['key']}-{seen}")
        return "ok"

    def _meet(self, i: dict[str, Any]) -> str:
        with self._met:
            self.events.append(("start", i["name"]))
            self._arrived[i["group"]] += 1
            self._met.notify_all()
            self._met.wait_for(lambda: self._arrived[i["group"]] >= i["size"], timeout=i["wait_s"])
            self.events.append(("end", i["name"]))
        return i["name"]


@dataclasses.dataclass
class LLMCall:
    model: str
    tools: list[dict[str, Any]] | None
    timeout_s: float | None
    effort: str | None
    workflow: str
    node: str
    run_id: str


class DispatcherLLM:
    """The LLM interface over a real ChatDispatcher (the lead's version records ObservedOps)."""

    def __init__(self, chat: ChatDispatcher) -> None:
        self.chat_dispatcher = chat
        self.calls: list[LLMCall] = []

    def chat(self, model: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
             timeout_s: float | None, effort: str | None, workflow: str, node: str, run_id: str) -> LLMReply:
        self.calls.append(LLMCall(model, tools, timeout_s, effort, workflow, node, run_id))
        result = self.chat_dispatcher.chat(model, messages, tools=tools, timeout_s=timeout_s,
                                           think=None if effort is None else effort != "low")
        return LLMReply(result.content, result.tool_calls, result.model, result.provider, uuid.uuid4().hex)


FAST = ChatPolicy(timeout_s=5.0, retries=0, cooldown_failures=0)
KEYS = {"OPENROUTER_API_KEY": "sk-or-test", "KIMI_API_KEY": "sk-kimi-test"}


@dataclasses.dataclass
class Harness:
    runner: WorkflowRunner
    modes: TestModes
    llm: DispatcherLLM
    srv: LLMServer
    lake: Lake
    slept: list[float]


@pytest.fixture(name="wf")
def harness_fixture(lake: Lake, llm: LLMServer) -> Iterator[Harness]:
    """A runner over a fresh lake, the test modes, and a dispatcher whose providers all live on `llm`."""
    llm.reset()
    settings = Settings.load(env={}, **provider_settings(llm.url), models={"fast": "openrouter/vendor/fast"})
    modes, slept = TestModes(), []
    with ChatDispatcher(settings, env=KEYS, policy=FAST) as chat:
        dispatcher_llm = DispatcherLLM(chat)
        yield Harness(WorkflowRunner(RunStore(lake.ctx), modes, dispatcher_llm, sleep=slept.append), modes,
                      dispatcher_llm, llm, lake, slept)
    llm.reset()

"""Extra workflow modes: names a mode node (or an LLM node's tool) may use besides the catalog's operations.

Every operation of the catalog is a mode under its own name (`matrix.search`, `dataset.ingest`, ...). An
extra mode gives one operation another name and shape; `llm.chat` below is one: the `chat` operation for a
model chosen at run time (`model: $input.model`), answering its text (or, with `json: true`, the JSON in it).

    from lakehouse.engine.workflows.modes import register_mode
    register_mode("distillation.score", op="distill.score",
                  description="Score one answer against its evidence (0-1).",
                  input_schema={"type": "object", "properties": {...}, "required": [...]},
                  args=lambda node_input: {...},              # the node's input -> the operation's
                  output=lambda out, node_input: out["score"])

A mode runs exactly one operation, through `lake.ops.call`: it is validated, ruled (a node has the powers of
whoever started its workflow) and recorded like any call, with the workflow, run and node ids. A capability
that is no operation yet becomes one first (engine/ops). Register when the module defining the operation is
imported; a name registered twice, or the name of an operation, is an error.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lakehouse.engine.workflows.replies import json_reply
from lakehouse.errors import Unprocessable

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    op: str  # the operation that runs it
    description: str | None = None  # None: the operation's
    input_schema: Mapping[str, Any] | None = None  # None: the operation's input schema
    args: Callable[[dict[str, Any]], dict[str, Any]] = dict
    output: Callable[[Any, dict[str, Any]], Any] = lambda out, node_input: out


_MODES: dict[str, Mode] = {}
_LOCK = threading.Lock()


def register_mode(name: str, *, op: str, description: str | None = None,
                  input_schema: Mapping[str, Any] | None = None,
                  args: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                  output: Callable[[Any, dict[str, Any]], Any] | None = None) -> Mode:
    """Make `name` a mode running operation `op`; see the module docstring."""
    if not _NAME.match(name):
        raise ValueError(f"mode name {name!r} must be dotted lower-case words (e.g. 'drift.scorer')")
    mode = Mode(name, op, description, input_schema, args or dict, output or (lambda out, node_input: out))
    with _LOCK:
        if name in _MODES:
            raise ValueError(f"mode {name!r} is registered already (running {_MODES[name].op!r})")
        _MODES[name] = mode
    return mode


def unregister_mode(name: str) -> None:
    with _LOCK:
        _MODES.pop(name, None)


def registered_modes() -> dict[str, Mode]:
    with _LOCK:
        return dict(_MODES)


_LLM_CHAT_SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "minLength": 1, "description": "a model id or tier:<name>"},
        "prompt": {"type": "string"},
        "system": {"type": "string"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "json": {"type": "boolean", "description": "answer the JSON value in the model's text"},
    },
    "required": ["model", "prompt"],
    "additionalProperties": False,
}


def _chat_output(out: Any, node_input: dict[str, Any]) -> Any:
    if not node_input.get("json"):
        return out.content
    try:
        return json_reply(out.content, lenient=True)
    except ValueError as exc:
        raise Unprocessable(f"llm.chat: json is true, but {exc}", code="invalid_output") from None


register_mode("llm.chat", op="chat", input_schema=_LLM_CHAT_SCHEMA, output=_chat_output,
              description="One answer from an LLM chosen at run time: its text, or with json: true its JSON value.",
              args=lambda node_input: {k: v for k, v in node_input.items() if k != "json"})

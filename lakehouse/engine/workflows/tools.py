"""Operations offered to an LLM node as tools (its `allowed_tools`), and the calls the model makes.

Operation names contain dots (`matrix.search`); function names on the wire may only hold
`[A-Za-z0-9_-]` (OpenAI's rule, 64 characters at most), so a dot travels as `__`. A name that
already contains `__`, or that maps to something invalid, is refused when the workflow loads.

A call the model gets wrong (a tool it was not offered, arguments that fail the operation's schema,
an operation that raises) is answered with `{"error": {code, message}}` as the tool result, so the
model can correct itself; the node fails only if the model keeps asking past the rounds limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonschema

from lakehouse.engine.chat.types import TOOL_NAME
from lakehouse.errors import InvalidInput, LakehouseError

if TYPE_CHECKING:
    from lakehouse.engine.workflows.runner import ModeInfo

_DOT = "__"


def check_tool_name(operation: str) -> None:
    if _DOT in operation or not TOOL_NAME.match(to_function_name(operation)):
        raise InvalidInput(f"operation {operation!r} cannot be offered as a tool: its name must be made of "
                           f"[A-Za-z0-9_.-] without '__', 64 characters at most", code="invalid_tool_name")


def to_function_name(operation: str) -> str:
    return operation.replace(".", _DOT)


def to_operation(function_name: str) -> str:
    return function_name.replace(_DOT, ".")


def tool_specs(allowed: tuple[str, ...], modes: Mapping[str, ModeInfo]) -> list[dict[str, Any]]:
    """The `tools` of a chat request: one function per allowed operation, its input schema as parameters."""
    return [{"type": "function",
             "function": {"name": to_function_name(op), "description": modes[op].description,
                          "parameters": dict(modes[op].input_schema) or {"type": "object", "properties": {}}}}
            for op in allowed]


def check_arguments(operation: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """InvalidInput naming the first place the arguments break the operation's input schema."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(dict(arguments)))
    if err is not None:
        at = ".".join(map(str, err.absolute_path)) or "(top)"
        raise InvalidInput(f"input of {operation!r} does not match its schema at {at}: {err.message}",
                           code="invalid_operation_input")


def error_result(exc: LakehouseError) -> str:
    return json.dumps({"error": {"code": exc.code, "message": exc.message}}, ensure_ascii=False)

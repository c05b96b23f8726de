"""The operations catalog: every capability once, typed, validated, recorded.

An `Op` has a name (`vectors.search`), a one-line description, a typed input (a pydantic model:
validated in one place, an error is `InvalidInput` naming the field), a typed output, a flag for
whether it writes, and the surfaces that expose it (HTTP route, SQL function, CLI command), from
which the README's operations table is generated. `Operations.call` is the one way in: it takes the
caller from the context variable (`ops.context`), validates, applies the rules every surface shares
(a remote caller cannot run a local_only op, a read-only entrance a writing one; a profile's bindings,
ops/scope.py), runs the op and records exactly one ObservedOp.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pydantic

from lakehouse.engine.observer.ops import ObservedOp
from lakehouse.engine.ops import scope
from lakehouse.engine.ops.context import current, entrance, remote
from lakehouse.engine.ops.summary import summarise_error, summarise_input
from lakehouse.errors import Forbidden, InvalidInput, LakehouseError, NotFound, StorageError

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

log = logging.getLogger(__name__)


class Input(pydantic.BaseModel):
    """Base of every op's input: unknown fields are errors, types are strict (a JSON "5" is no integer)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True,
                                       populate_by_name=True)


@dataclasses.dataclass(frozen=True)
class Op:
    name: str
    description: str
    input: type[Input]
    run: Callable[[Lake, Any], Any]
    output: Any = None  # the output's type, for the description (JSON schema through pydantic)
    writes: bool = False
    http: str | None = None  # "POST /vectors/search"
    sql: str | None = None  # "vector_search(corpus, query, k, ids := NULL)"
    cli: str | None = None  # "lakehouse sql QUERY"
    count: Callable[[Any], int | None] = lambda out: None  # rows / items, for the record
    summary: Callable[[Any], dict[str, Any] | None] = lambda out: None  # output summary, for the record
    deferred: bool = False  # the output is a stream: recorded when it finishes (see ChatStream.on_finish)
    private: tuple[str, ...] = ()  # input fields recorded by size only (prompts may hold anything)
    local_only: bool = False  # the server owner's (Python, CLI): no MCP tool, refused to remote callers

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "writes": self.writes,
                "input_schema": self.input.model_json_schema(), "http": self.http, "sql": self.sql, "cli": self.cli}


class Catalog:
    """The named ops; `describe()` is what the MCP server, the workflow runner and the README use."""

    def __init__(self, ops: list[Op]) -> None:
        self._ops: dict[str, Op] = {}
        for op in ops:
            if op.name in self._ops:
                raise ValueError(f"operation {op.name!r} is defined twice")
            self._ops[op.name] = op

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._ops.values())

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def names(self) -> list[str]:
        return list(self._ops)

    def get(self, name: str) -> Op:
        try:
            return self._ops[name]
        except (KeyError, TypeError):
            raise NotFound(f"no operation named {name!r}", code="unknown_op") from None

    def describe(self) -> list[dict[str, Any]]:
        return [op.describe() for op in self._ops.values()]


class Operations:
    """The catalog bound to one lake: `lake.ops.call("vectors.search", corpus="workers", query="forklift")`."""

    def __init__(self, lake: Lake, catalog: Catalog) -> None:
        self.lake = lake
        self.catalog = catalog

    def describe(self) -> list[dict[str, Any]]:
        return self.catalog.describe()

    def call(self, name: str, args: Mapping[str, Any] | None = None, /, *, text_args: bool = False,
             on_record: Callable[[str], None] | None = None, **kwargs: Any) -> Any:
        """Validate, check, run and record one op. `args` (a mapping, e.g. a JSON body) and `kwargs` are its input;
        `text_args`: every value arrived as text (a query string or a form) and is converted by the schema;
        `on_record(op_id)`: called with the id of this call's ObservedOp once it is recorded (success or failure;
        not for the calls the op makes itself), so a caller such as a workflow node can point at its record."""
        op = self.catalog.get(name)
        caller = current()
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        raw: dict[str, Any] = {**args, **kwargs} if args is not None else kwargs
        inp = None
        try:
            profile = scope.resolve(self.lake, caller)
            inp = validate(op, raw, text_args=text_args)
            if op.local_only and remote():
                raise Forbidden(f"{op.name} is the server owner's: call it from Python or the lakehouse CLI on the "
                                "server itself", code="local_only")
            if op.writes and caller.read_only:
                raise Forbidden(f"{op.name} writes to the lake and cannot be called from a read-only query",
                                code="read_only")
            if profile is not None:
                scope.check(self.lake, op, inp, profile)
            # the lake's change journal names the op behind each write; engine code sees the caller's profile
            with entrance(op=op.name, scope=profile):
                out = op.run(self.lake, inp)
        except BaseException as exc:
            self._record(op, caller, started, t0, inp, raw, None, exc, on_record)
            raise
        if op.deferred and hasattr(out, "on_finish"):
            out.on_finish = lambda error: self._record(op, caller, started, t0, inp, raw, out, error, on_record)
            return out
        self._record(op, caller, started, t0, inp, raw, out, None, on_record)
        return out

    def _record(self, op: Op, caller: Any, started: dt.datetime, t0: float, inp: Input | None,
                raw: Mapping[str, Any], out: Any, error: BaseException | None,
                on_record: Callable[[str], None] | None = None) -> None:
        observer = self.lake.observer
        if not observer.enabled:
            return
        try:
            item = ObservedOp(
                id=secrets.token_hex(8), ts=started.replace(tzinfo=None).isoformat(timespec="milliseconds"), op=op.name,
                origin=caller.origin, duration_ms=round((time.perf_counter() - t0) * 1000, 3), ok=error is None,
                input=summarise_input(inp if inp is not None else raw, op.private), profile=caller.profile,
                workflow=caller.workflow, run_id=caller.run_id, node=caller.node)
            if error is None:
                item.rows = op.count(out)
                item.output = op.summary(out)
            else:
                item.error_code, item.error = summarise_error(error)
                if isinstance(error, StorageError):
                    self.lake.ctx.journal.record("write_error", op.name, item.error or "", code=item.error_code)
            observer.record(item)
            if on_record is not None:
                on_record(item.id)
        except Exception:  # noqa: BLE001 - recording never fails the operation it records
            log.warning("could not record %s", op.name, exc_info=True)


_SURROGATE = re.compile(r"[\ud800-\udfff\x00]")
_NO_TEXT = frozenset({int, float, bool, type(None)})


def validate(op: Op, raw: Mapping[str, Any], *, text_args: bool = False) -> Input:
    """The op's input model from `raw`, or InvalidInput naming the field."""
    _check_text(raw, "")
    try:
        return op.input.model_validate(_plain(raw), strict=not text_args)
    except pydantic.ValidationError as exc:
        raise _invalid(op, exc) from None


def _plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    """numpy scalars (from a DataFrame or a query) as the Python numbers they are; strict types refuse them."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in raw.items()}


def _check_text(value: Any, path: str) -> None:
    """No lone surrogate (it cannot be encoded: stored, logged or sent) and no NUL byte, in any text field."""
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad:
            what = "a NUL byte" if bad.group() == "\x00" else "a lone surrogate (not valid Unicode text)"
            raise InvalidInput(f"field {path or 'input'!r} holds {what} at position {bad.start()}",
                               code="invalid_text", field=path or None)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_text(k, path)
            _check_text(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        # Hot path: a filter's 50K ids are checked per call, so a list of numbers or of clean text is passed at C speed.
        kinds = set(map(type, value))
        if kinds <= _NO_TEXT or (kinds == {str} and _SURROGATE.search("".join(value)) is None):
            return
        for i, v in enumerate(value[:100_000]):
            if type(v) in _NO_TEXT or (type(v) is str and _SURROGATE.search(v) is None):
                continue
            _check_text(v, f"{path}[{i}]")


def _invalid(op: Op, exc: pydantic.ValidationError) -> InvalidInput:
    first = exc.errors(include_url=False)[0]
    # union members appear in the location as "function-plain[...]" or "list[str]": not the caller's words
    where = [p for p in first["loc"] if isinstance(p, int) or re.fullmatch(r"\w+", str(p))]
    first["loc"] = tuple(where)
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
    field = str(first["loc"][0]) if first["loc"] else None
    kind = first["type"]
    nested = len(first["loc"]) > 1
    if kind == "missing" and not nested:
        return InvalidInput(f"missing field {loc!r}", code="missing_field", field=field)
    if kind == "extra_forbidden" and not nested:
        known = ", ".join(op.input.model_fields)
        return InvalidInput(f"unknown field {loc!r} for {op.name} (fields: {known})", code="unknown_field", field=field)
    message = first["msg"]
    ctx = first.get("ctx") or {}
    if isinstance(ctx.get("error"), LakehouseError):  # raised by one of our validators: its words
        err = ctx["error"]
        return InvalidInput(err.message if loc == field else f"{loc}: {err.message}", code=err.code, field=field)
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return InvalidInput(f"field {loc!r}: {message}", code=f"invalid_{field}" if field else "invalid_input", field=field)

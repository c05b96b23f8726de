"""References to earlier outputs and to the run's inputs, inside `prompt` text and `input` values.

    $classify.output              the whole output of node `classify`
    $classify.output.kind.0       a field path into it (dict keys, list indexes; a text output
                                  holding JSON is read as JSON, as Archon does for `$node.output.field`)
    ${classify.output.kind}       the same, delimited, for text that continues with letters or a dot
    $.output                      the output of the node's only upstream node
    $input.topic                  an input given to the run (field paths work here too)
    $$                            a literal `$`

Text is compiled once at load into a `Template` (literal strings and `Ref`s). An `input` value that
is exactly one reference becomes that value (a dict stays a dict); a reference inside longer text is
rendered as text (strings as they are, anything else as JSON). A reference that cannot be resolved
is an error naming the node and the reference, never an empty string.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from lakehouse.errors import Unprocessable

INPUT = "input"  # `$input.<name>`: so no node may be called this
_ID = r"[A-Za-z_][A-Za-z0-9_-]*"
_PATH = r"(?:\.[A-Za-z0-9_]+)+"
_TOKEN = re.compile(rf"\$\$|\$\{{(?P<braced>[^}}]*)\}}|\$(?P<head>{_ID})?(?P<path>{_PATH})")
_BODY = re.compile(rf"(?P<head>{_ID})?(?P<path>{_PATH})")


@dataclasses.dataclass(frozen=True)
class Ref:
    """`kind` is "node" (`$id.output...`), "upstream" (`$.output...`) or "input" (`$input.name...`)."""

    kind: str
    name: str | None  # the node id or the input name; None for "upstream"
    path: tuple[str, ...]  # the field path after `output` or after the input name
    text: str  # as written, for messages


@dataclasses.dataclass(frozen=True)
class Template:
    """Text with references: literal strings and `Ref`s, in order."""

    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]


class RefSyntaxError(ValueError):
    """A `$...` that looks like a reference and is not a valid one (the loader names node and field)."""


def compile_text(text: str, nodes: Collection[str]) -> Template:
    """`text` split into literals and references. `nodes` (the workflow's node ids) tells a typo such
    as `$classify.outptu` (an error) from text that merely contains a dollar sign (`$HOME.rc`, `$.items`)."""
    parts: list[str | Ref] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.group(0) == "$$":
            ref: str | Ref | None = "$"
        elif m.group("braced") is not None:
            body = _BODY.fullmatch(m.group("braced").strip())
            ref = _ref(body.group("head"), body.group("path"), m.group(0), nodes) if body else None
        else:
            ref = _ref(m.group("head"), m.group("path"), m.group(0), nodes)
        if ref is None:  # not ours: leave the text alone
            continue
        parts.extend([text[pos:m.start()], ref])
        pos = m.end()
    parts.append(text[pos:])
    merged: list[str | Ref] = []
    for p in parts:  # adjacent literals (around `$$`) become one
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif p != "":
            merged.append(p)
    return Template(tuple(merged))


def _ref(head: str | None, path: str, text: str, nodes: Collection[str]) -> Ref | None:
    segments = tuple(path[1:].split("."))
    if head is None:
        return Ref("upstream", None, segments[1:], text) if segments[0] == "output" else None
    if head == INPUT:
        return Ref("input", segments[0], segments[1:], text)
    if head not in nodes:
        return None
    if segments[0] != "output":
        raise RefSyntaxError(f"{text} names node {head!r} but not its output: write ${head}.output"
                             f"{'.' + '.'.join(segments) if segments else ''}")
    return Ref("node", head, segments[1:], text)


def compile_value(value: Any, nodes: Collection[str]) -> Any:
    """An `input` value with every string compiled: a string that is one reference becomes the `Ref`,
    one with references a `Template`, others stay as they are."""
    if isinstance(value, str):
        t = compile_text(value, nodes)
        if not t.refs:
            return "".join(t.parts)  # `$$` unescaped
        return t.parts[0] if len(t.parts) == 1 else t
    if isinstance(value, Mapping):
        return {k: compile_value(v, nodes) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_value(v, nodes) for v in value]
    return value


def refs_in(value: Any) -> list[Ref]:
    """Every reference in a compiled value or template."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Template):
        return value.refs
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a node's references can see: the outputs of nodes that succeeded, and the run's inputs."""

    node: str
    outputs: Mapping[str, Any]
    inputs: Mapping[str, Any]
    upstream: str | None = None  # the one node `$.output` means
    states: Mapping[str, str] = dataclasses.field(default_factory=dict)  # node -> status, for messages

    def resolve(self, ref: Ref) -> Any:
        if ref.kind == "input":
            if ref.name not in self.inputs:
                have = ", ".join(sorted(self.inputs)) or "none"
                raise self._error(ref, f"the run has no input {ref.name!r} (inputs: {have})")
            return self._walk(self.inputs[ref.name], ref, f"input {ref.name!r}")
        name = self.upstream if ref.kind == "upstream" else ref.name
        if name is None or name not in self.outputs:
            state = self.states.get(name or "", "not run")
            raise self._error(ref, f"node {name!r} has no output (it is {state})")
        return self._walk(self.outputs[name], ref, f"the output of {name!r}")

    def _walk(self, value: Any, ref: Ref, what: str) -> Any:
        for i, seg in enumerate(ref.path):
            where = what if i == 0 else f"{what} at {'.'.join(ref.path[:i])!r}"
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise self._error(ref, f"{where} is text, not JSON: it has no field {seg!r}") from None
            if isinstance(value, Mapping):
                if seg not in value:
                    keys = ", ".join(map(str, list(value)[:20])) or "none"
                    raise self._error(ref, f"{where} has no field {seg!r} (fields: {keys})")
                value = value[seg]
            elif isinstance(value, list) and seg.isdigit():
                if int(seg) >= len(value):
                    raise self._error(ref, f"{where} has {len(value)} items: no index {seg}")
                value = value[int(seg)]
            else:
                raise self._error(ref, f"{where} is {_kind(value)}: it has no field {seg!r}")
        return value

    def _error(self, ref: Ref, why: str) -> Unprocessable:
        return Unprocessable(f"node {self.node!r}: reference {ref.text} cannot be resolved: {why}",
                             code="missing_reference", node=self.node, reference=ref.text)

    def render(self, template: Template) -> str:
        return "".join(p if isinstance(p, str) else as_text(self.resolve(p)) for p in template.parts)

    def value(self, compiled: Any) -> Any:
        """A compiled `input` value with every reference resolved."""
        if isinstance(compiled, Ref):
            return self.resolve(compiled)
        if isinstance(compiled, Template):
            return self.render(compiled)
        if isinstance(compiled, Mapping):
            return {k: self.value(v) for k, v in compiled.items()}
        if isinstance(compiled, list):
            return [self.value(v) for v in compiled]
        return compiled


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Sequence):
        return "a list"
    return f"a {type(value).__name__}"

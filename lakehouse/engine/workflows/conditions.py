"""The `when:` language: a small condition over earlier outputs and run inputs, parsed here, never eval'd.

    $classify.output.kind == 'bug'
    $score.output > 80 and not ($review.output.blocked or $input.force)
    $classify.output.kind in ['bug', 'regression'] && 'urgent' in $triage.output

Grammar (recursive descent; `&&`, `||` and `!` are accepted because Archon writes them):

    expr   := and (('or' | '||') and)*
    and    := unary (('and' | '&&') unary)*
    unary  := ('not' | '!') unary | compare
    compare:= atom (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not' 'in') atom)?
    atom   := reference | 'string' | "string" | number | true | false | null | '[' atom, ... ']' | '(' expr ')'

References are those of refs.py. Comparisons follow Archon's string-minded semantics where they
differ from Python's: a numeric string equals the number it spells (`'3' == 3`), a boolean equals
'true'/'false', and `<`-style comparisons compare numbers (numeric strings included) or two strings;
anything else is an error. The result of the whole expression is read as JSON truthiness.

Where Archon fails closed (an unparseable condition or a missing output skips the node), this
fails loudly: a malformed condition is refused when the workflow loads, and a reference that cannot
be resolved fails the node with an error naming it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from lakehouse.engine.workflows.refs import Ref, RefSyntaxError, compile_text

_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<ref>\$\{[^}]*\}|\$[A-Za-z0-9_.-]*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],-])
  | (?P<word>[A-Za-z_]+)
""", re.VERBOSE)
_WORDS = {"and", "or", "not", "in", "true", "false", "null", "True", "False", "None"}
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_COMPARE = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"}
MAX_LENGTH = 2000  # a condition is a line, not a program


class ConditionError(ValueError):
    """Raised at load for a malformed condition, and while evaluating for one that cannot be evaluated."""


@dataclasses.dataclass(frozen=True)
class Condition:
    text: str
    tree: tuple[Any, ...]  # ("lit", v) | ("ref", Ref) | ("list", items) | ("not", x) | ("and"/"or", items)
    #                        | ("cmp", op, left, right)

    @property
    def refs(self) -> list[Ref]:
        return list(_refs(self.tree))

    def evaluate(self, resolve: Callable[[Ref], Any]) -> bool:
        return _truthy(_eval(self.tree, resolve))


def parse_condition(text: str, nodes: Collection[str]) -> Condition:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"is longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokenize(text, nodes))
    tree = parser.expr()
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek()[1]!r} after a complete condition")
    return Condition(text, tree)


def _tokenize(text: str, nodes: Collection[str]) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if m is None:
            raise ConditionError(f"unexpected character {text[pos]!r} at position {pos}")
        kind, value = m.lastgroup, m.group(0)
        pos = m.end()
        if kind == "space":
            continue
        if kind == "ref":
            try:
                parts = compile_text(value, nodes).parts
            except RefSyntaxError as exc:
                raise ConditionError(str(exc)) from None
            if len(parts) != 1 or not isinstance(parts[0], Ref):
                raise ConditionError(f"{value} is not a reference to a node's output or a run input")
            tokens.append(("ref", parts[0]))
        elif kind == "string":
            tokens.append(("lit", _unquote(value)))
        elif kind == "number":
            tokens.append(("lit", float(value) if any(c in value for c in ".eE") else int(value)))
        elif kind == "word":
            if value not in _WORDS:
                raise ConditionError(f"unknown word {value!r}: quote strings ('{value}')")
            tokens.append(("lit", _CONSTANTS[value]) if value in _CONSTANTS else ("op", value))
        else:
            tokens.append(("op", {"&&": "and", "||": "or", "!": "not"}.get(value, value)))
    return tokens


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return tok[1]
        return None

    def expect(self, op: str) -> None:
        if self.take_op(op) is None:
            tok = self.peek()
            raise ConditionError(f"expected {op!r}, found {'the end' if tok is None else repr(tok[1])}")

    def expr(self) -> tuple[Any, ...]:
        items = [self.conj()]
        while self.take_op("or"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else ("or", tuple(items))

    def conj(self) -> tuple[Any, ...]:
        items = [self.unary()]
        while self.take_op("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else ("and", tuple(items))

    def unary(self) -> tuple[Any, ...]:
        if self.take_op("not"):
            return ("not", self.unary())
        return self.compare()

    def compare(self) -> tuple[Any, ...]:
        left = self.atom()
        op = self.take_op("==", "!=", "<", "<=", ">", ">=", "in")
        if op is None and self.peek() == ("op", "not") and self.i + 1 < len(self.tokens) \
                and self.tokens[self.i + 1] == ("op", "in"):
            self.i += 2
            op = "not in"
        if op is None:
            return left
        return ("cmp", op, left, self.atom())

    def atom(self) -> tuple[Any, ...]:
        tok = self.peek()
        if tok is None:
            raise ConditionError("ends where a value was expected")
        self.i += 1
        kind, value = tok
        if kind == "ref":
            return ("ref", value)
        if kind == "lit":
            return ("lit", value)
        if value == "-":  # a negative number
            nxt = self.peek()
            if nxt is None or nxt[0] != "lit" or isinstance(nxt[1], bool) or not isinstance(nxt[1], (int, float)):
                raise ConditionError("'-' must be followed by a number")
            self.i += 1
            return ("lit", -nxt[1])
        if value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if value == "[":
            items: list[tuple[Any, ...]] = []
            if not self.take_op("]"):
                items.append(self.atom())
                while self.take_op(","):
                    items.append(self.atom())
                self.expect("]")
            return ("list", tuple(items))
        raise ConditionError(f"unexpected {value!r} where a value was expected")


def _refs(tree: tuple[Any, ...]) -> list[Ref]:
    tag = tree[0]
    if tag == "ref":
        return [tree[1]]
    if tag == "lit":
        return []
    if tag == "not":
        return _refs(tree[1])
    if tag == "cmp":
        return _refs(tree[2]) + _refs(tree[3])
    return [r for item in tree[1] for r in _refs(item)]  # and / or / list


def _eval(tree: tuple[Any, ...], resolve: Callable[[Ref], Any]) -> Any:
    tag = tree[0]
    if tag == "lit":
        return tree[1]
    if tag == "ref":
        return resolve(tree[1])
    if tag == "list":
        return [_eval(item, resolve) for item in tree[1]]
    if tag == "not":
        return not _truthy(_eval(tree[1], resolve))
    if tag == "and":
        return all(_truthy(_eval(item, resolve)) for item in tree[1])
    if tag == "or":
        return any(_truthy(_eval(item, resolve)) for item in tree[1])
    _, op, left, right = tree
    return _compare(op, _eval(left, resolve), _eval(right, resolve))


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        if isinstance(b, list):
            found = any(_equal(a, item) for item in b)
        elif isinstance(a, str) and isinstance(b, (str, Mapping)):  # a substring, or a key
            found = a in b
        else:
            raise ConditionError(f"cannot test {_show(a)} in {_show(b)}: the right side must be a list, "
                                 f"a text (for a text on the left) or an object (for a key)")
        return found if op == "in" else not found
    x, y = _number(a), _number(b)
    if x is None or y is None:
        if not (isinstance(a, str) and isinstance(b, str)):
            raise ConditionError(f"cannot order {_show(a)} and {_show(b)}: compare two numbers or two texts")
        x, y = a, b
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, str) or isinstance(b, str):  # Archon compares text: true == 'true'
            return json.dumps(a if isinstance(a, bool) else b) == (b if isinstance(b, str) else a)
        return type(a) is type(b) and a == b  # never True == 1
    if isinstance(a, str) != isinstance(b, str) and _number(a) is not None and _number(b) is not None:
        return _number(a) == _number(b)
    return a == b


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _truthy(v: Any) -> bool:
    return v not in (None, False, 0, "") and not (isinstance(v, (list, dict)) and not v)


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."

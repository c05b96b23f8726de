"""DuckDB's own parse of a statement, and every name in it.

`parse(sql)` returns the tree DuckDB's parser builds for one statement, as the JSON that
`json_serialize_sql` gives: the same tree the engine binds and runs, so a name hidden from a second
parser (comments, quoting, dollar strings, dialect corners) is not hidden here. The serialisation is
complete: DuckDB's test suite round-trips every statement through it (`verify_serializer`) and
requires the result to equal the original.

`names(tree)` walks that tree without recursion (a query nested a thousand levels deep is just a
long loop) and yields every function, table function, relation and SHOW in any position (select
list, FROM, joins, lateral subqueries, CTE bodies, macro arguments, window clauses, lambdas), with
the CTE names visible at that point.

Two statement forms have no serialisation, and are parsed through an equivalent:
- `EXPLAIN [ANALYZE] <query>`: the query after the keywords;
- a PIVOT without `IN` lists (DuckDB runs it as two statements, a CREATE TYPE of the distinct values
  and the SELECT): the same text with ` IN (NULL)` added after each pivot column, inserted between
  DuckDB's own tokens, so every other token keeps its meaning.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from lakehouse.errors import Forbidden, InvalidInput, clean_duckdb_message

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Keywords that end a simplified PIVOT's ON list (at its own parenthesis level).
_ON_LIST_ENDS = frozenset({"USING", "GROUP", "ORDER", "LIMIT", "OFFSET", "UNION", "EXCEPT", "INTERSECT",
                           "QUALIFY", "WINDOW", "HAVING", "WHERE"})


@dataclasses.dataclass(frozen=True)
class Name:
    """One named thing of a statement: `kind` is function, table_function, relation or show."""

    kind: str
    name: str  # lower case (DuckDB resolves names case-insensitively)
    schema: str = ""
    catalog: str = ""
    ctes: frozenset[str] = frozenset()  # CTE names visible where a relation is named
    node: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def qualified(self) -> str:
        return ".".join(p for p in (self.catalog, self.schema, self.name) if p)


@dataclasses.dataclass(frozen=True)
class Parsed:
    tree: dict[str, Any]  # one serialised statement: {"node": {...}, "named_param_map": ...}
    dynamic_pivot: bool  # DuckDB will run it as CREATE TYPE + SELECT


class _Parser:
    """A private in-memory DuckDB used only to parse (never to run a caller's text), a cursor per thread."""

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._local = threading.local()
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            with self._lock:
                cur = self._local.cur = self._con.cursor()
        return cur


_PARSER: _Parser | None = None
_PARSER_LOCK = threading.Lock()


def parser() -> duckdb.DuckDBPyConnection:
    """This thread's cursor on the parse-only instance (the allow list is read from it too)."""
    global _PARSER
    if _PARSER is None:
        with _PARSER_LOCK:
            if _PARSER is None:
                _PARSER = _Parser()
    return _PARSER.cursor()


def statements(sql: str) -> list[duckdb.Statement]:
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _unreadable(clean_duckdb_message(exc)) from None


def _unreadable(message: str) -> InvalidInput:
    if "expression depth" in message:  # DuckDB's hint (SET max_expression_depth) is not the caller's to follow
        return InvalidInput("the query nests expressions more than 1000 levels deep", code="sql_too_deep")
    return InvalidInput(message, code="sql_syntax")


def parse(sql: str) -> Parsed:
    """DuckDB's tree of one SELECT-like statement (a query, DESCRIBE, SHOW, SUMMARIZE, PIVOT, UNPIVOT,
    VALUES, FROM-first); EXPLAIN is the caller's to strip (`explained`). Forbidden for anything else."""
    found = statements(sql)
    kinds = [s.type.name for s in found]
    dynamic = _generated_pivot(found)
    if dynamic:
        text = _with_pivot_values(sql)
        if [s.type.name for s in statements(text)] != ["SELECT"]:
            raise InvalidInput("could not read this PIVOT as one query: give its columns' values (ON col IN (...))",
                               code="sql_unverifiable")
    else:
        if not found:
            raise InvalidInput("the SQL holds no statement", code="invalid_sql")
        if len(found) != 1:
            raise Forbidden(f"exactly one statement is allowed, got {len(found)}", code="multiple_statements")
        if kinds[0] != "SELECT":
            raise Forbidden(f"{kinds[0]} statements are not allowed here: read-only queries only (SELECT, WITH, "
                            "EXPLAIN, DESCRIBE, SHOW, SUMMARIZE, PIVOT)", code="statement_not_allowed")
        text = sql
    return Parsed(_serialise(text), dynamic)


@functools.lru_cache(maxsize=1024)  # the allow list and a profile's scope read the same statement: parsed once (~0.3 ms)
def parse_query(sql: str) -> Parsed:
    """`parse` of the statement, or of the query under its `EXPLAIN [ANALYZE]`. The tree is shared: read it only."""
    inner = explained(sql)
    return parse(inner if inner is not None else sql)


def executable(sql: str) -> list[duckdb.Statement]:
    """The statements DuckDB makes of a checked `sql`, to run one by one: one SELECT or EXPLAIN, or the CREATE
    TYPEs of a PIVOT without IN lists then its SELECT. Running these objects, not the text, means no other
    statement type can run, whatever a second reading of the text would give."""
    found = statements(sql)
    kinds = [s.type.name for s in found]
    if kinds in (["SELECT"], ["EXPLAIN"]) or _generated_pivot(found):
        return found
    raise Forbidden(f"{', '.join(kinds) or 'no'} statements are not allowed here", code="statement_not_allowed")


def _generated_pivot(found: list[duckdb.Statement]) -> bool:
    """DuckDB turns each PIVOT without IN lists into a CREATE TYPE of its own making (no text of the caller's)."""
    kinds = [s.type.name for s in found]
    return len(found) > 1 and kinds[-1] == "SELECT" and set(kinds[:-1]) == {"CREATE"} and not any(
        s.query for s in found)


def explained(sql: str) -> str | None:
    """The statement under `EXPLAIN [ANALYZE]` (DuckDB's tokens, so comments before it are fine), else None."""
    if [s.type.name for s in statements(sql)] != ["EXPLAIN"]:
        return None
    found = tokens(sql)
    i = 1
    if i < len(found) and found[i][1].upper() == "ANALYZE":
        i += 1
    if i < len(found) and found[i][1] == "(":
        raise Forbidden("EXPLAIN options are not supported here: use EXPLAIN or EXPLAIN ANALYZE",
                        code="statement_not_allowed")
    if i >= len(found):
        raise InvalidInput("EXPLAIN needs a query", code="sql_syntax")
    return sql[found[i][0]:]


def _serialise(text: str) -> dict[str, Any]:
    raw = parser().execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise InvalidInput("the query nests too deeply to be checked", code="sql_too_deep") from None
    if doc.get("error"):
        message = doc.get("error_message") or "the query could not be parsed"
        if doc.get("error_type") == "not implemented":  # PRAGMA x reads as a SELECT, but is not one
            raise Forbidden("only queries are allowed here (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE, "
                            "PIVOT)", code="statement_not_allowed")
        raise _unreadable(message)
    trees = doc["statements"]
    if len(trees) != 1:
        raise Forbidden(f"exactly one statement is allowed, got {len(trees)}", code="multiple_statements")
    return trees[0]


def trees(texts: list[str]) -> list[dict[str, Any] | None]:
    """DuckDB's trees of many single-statement texts in one call (None where one does not parse): for the
    engine's own SQL, such as DuckDB's macro bodies; a caller's SQL goes through `parse`."""
    rows = parser().execute("SELECT json_serialize_sql(t) FROM unnest(?::VARCHAR[]) WITH ORDINALITY u(t, i) "
                            "ORDER BY i", [texts]).fetchall()
    docs = [json.loads(raw) for (raw,) in rows]
    return [None if d.get("error") or len(d["statements"]) != 1 else d["statements"][0] for d in docs]


def tokens(sql: str) -> list[tuple[int, str]]:
    """DuckDB's tokens as (character offset, text); comments are not tokens. DuckDB counts in UTF-8 bytes."""
    try:
        found = duckdb.tokenize(sql)
    except duckdb.Error as exc:
        raise _unreadable(clean_duckdb_message(exc)) from None
    data = sql.encode()
    out: list[tuple[int, str]] = []
    chars, last = 0, 0
    for i, (pos, kind) in enumerate(found):
        chars += len(data[last:pos].decode())
        last = pos
        end = found[i + 1][0] if i + 1 < len(found) else len(data)
        chunk = data[pos:end].decode()
        word = _WORD.match(chunk)
        if kind.name in ("keyword", "identifier") and word:
            text = word.group()
        elif kind.name == "operator":
            text = chunk[:1]
        else:
            text = chunk.strip()
        out.append((chars, text))
    return out


def _with_pivot_values(sql: str) -> str:
    """`sql` with ` IN (NULL)` after every pivot column that has no IN list (module docstring)."""
    found = tokens(sql)
    depth_at = []
    depth = 0
    for _, text in found:
        if text == ")":
            depth -= 1
        depth_at.append(depth)
        if text == "(":
            depth += 1
    inserts: list[int] = []
    for i, (_, text) in enumerate(found):
        if text.upper() in ("PIVOT", "PIVOT_WIDER"):
            inserts += _on_list_ends(found, depth_at, i, len(sql))
    for at in sorted(inserts, reverse=True):
        sql = sql[:at] + "\n IN (NULL) " + sql[at:]  # the newline ends a `--` comment before `at`
    return sql


def _on_list_ends(tokens: list[tuple[int, str]], depth_at: list[int], start: int, eof: int) -> list[int]:
    """Offsets after each element of the ON list of the PIVOT at `start` that lacks an IN list."""
    level = depth_at[start]
    i = start + 1
    while i < len(tokens) and depth_at[i] >= level:
        word = tokens[i][1].upper()
        if depth_at[i] == level and word == "ON":
            break
        if depth_at[i] == level and (word in _ON_LIST_ENDS or word == ";"):
            return []
        i += 1
    else:
        return []
    ends: list[int] = []
    has_in = False
    i += 1
    while True:
        done = i >= len(tokens) or depth_at[i] < level or (
            depth_at[i] == level and (tokens[i][1].upper() in _ON_LIST_ENDS or tokens[i][1] in (";", ")")))
        if done or (depth_at[i] == level and tokens[i][1] == ","):
            if not has_in:
                ends.append(tokens[i][0] if i < len(tokens) else eof)
            if done:
                return ends
            has_in = False
        elif depth_at[i] == level and tokens[i][1].upper() == "IN":
            has_in = True
        i += 1


def names(tree: dict[str, Any]) -> Iterator[Name]:
    """Every function, table function, relation and SHOW of a serialised statement, in any position."""
    stack: list[tuple[Any, frozenset[str], bool]] = [(tree, frozenset(), False)]
    while stack:
        node, ctes, is_table_function = stack.pop()
        if isinstance(node, list):
            stack.extend((item, ctes, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        entries = (node.get("cte_map") or {}).get("map") or []
        if entries:
            keys = [str(e["key"]).lower() for e in entries]
            for i, entry in enumerate(entries):
                # A CTE's body sees the CTEs before it, and itself only when it is recursive: anywhere else
                # its own name is the catalog's (DuckDB's binding), so it is checked as a relation.
                body = (entry.get("value") or {}).get("query", {}).get("node", {})
                own = {keys[i]} if str(body.get("cte_name", "")).lower() == keys[i] else set()
                stack.append((entry.get("value"), ctes | frozenset(keys[:i]) | own, False))
            ctes = ctes | frozenset(keys)
        kind, cls = node.get("type"), node.get("class")
        if kind == "BASE_TABLE":
            yield Name("relation", _low(node.get("table_name")), _low(node.get("schema_name")),
                       _low(node.get("catalog_name")), ctes, node)
        elif kind == "SHOW_REF":
            yield Name("show", _low(node.get("table_name")).strip('"'), _low(node.get("schema_name")),
                       _low(node.get("catalog_name")), ctes, node)
        elif kind == "TABLE_FUNCTION":
            stack.append((node.get("function"), ctes, True))
        elif cls in ("FUNCTION", "WINDOW"):
            yield Name("table_function" if is_table_function else "function", _low(node.get("function_name")),
                       _low(node.get("schema")), _low(node.get("catalog")), ctes, node)
        for key, value in node.items():
            if key == "cte_map" or (key == "function" and kind == "TABLE_FUNCTION"):
                continue  # walked above
            if isinstance(value, (dict, list)):
                stack.append((value, ctes, False))


def _low(value: Any) -> str:
    return str(value or "").lower()

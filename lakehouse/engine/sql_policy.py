"""What a caller's SQL may name: the allow list of the read-only path, checked on DuckDB's own parse.

Every statement or expression from a caller (`/sql` and `Lake.query`, a corpus's `sql`, the `where` of
hybrid, matrix and RAG searches, truth rules) is parsed by DuckDB (`sql_tree`) and every name in it,
in any position, must be on this list. Deny by default: a function DuckDB or an extension adds later
is refused until it is reviewed here. Allowed are:

- scalar, aggregate and window functions that DuckDB declares deterministic (`duckdb_functions()`
  stability CONSISTENT or CONSISTENT_WITHIN_QUERY: computation on the values given, no file, setting,
  sequence or session state), minus REFUSED_FUNCTIONS, plus REVIEWED_VOLATILE and PARSER_FUNCTIONS;
- DuckDB's own macros whose every overload's body uses only allowed names and no relation (checked the
  same way, to a fixed point: `pg_get_viewdef` reads `duckdb_views()`, `histogram` calls `query_table`,
  `pg_sleep` sleeps, so those are refused);
- the table functions of TABLE_FUNCTIONS;
- the engine's SQL surface: the macros of `lakehouse/sqlviews` and ENGINE_FUNCTIONS (their bodies are
  ours: `observer_ops()` reads the observer's files, which the caller cannot name);
- relations of the lake (catalog `lake`, any of its schemas) and CTEs in scope. Refused: other
  catalogs (`memory`, `system`, `temp`, DuckLake's metadata catalog, anything starting `__`), the
  `information_schema` and `pg_catalog` schemas, DuckDB's internal views (`sqlite_master`,
  `duckdb_tables`, ...) unless written `lake.<schema>.<name>`, and names that are paths (`'x.csv'`);
- `SHOW TABLES [FROM lake...]`, `DESCRIBE` and `SUMMARIZE` (their query is checked like any other);
  `SHOW ALL TABLES`, `SHOW DATABASES` and the rest name other catalogs and are refused.

The sandboxed instance (connection.sandbox) is the first wall: read-only attachment, no files outside
the lake's data and the observer's folders, locked configuration. This list is the second, and the
only one that keeps a caller from DuckDB's own file functions on the catalog file (DuckDB adds every
attached database's file to `allowed_paths` when external access goes off, and refuses to change it).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable
from typing import Any

from lakehouse import sqlviews
from lakehouse.engine import sql_tree
from lakehouse.engine.sql_tree import Name, Parsed
from lakehouse.errors import Forbidden, InvalidInput

LAKE = "lake"  # connection.LAKE_ALIAS (not imported: connection imports this module's users)
DETERMINISTIC = ("CONSISTENT", "CONSISTENT_WITHIN_QUERY")

# Deterministic by DuckDB's declaration, refused all the same.
REFUSED_FUNCTIONS = {
    "current_setting": "settings name the lake's folders (allowed_directories, temp_directory)",
    "getvariable": "session variables are not the caller's to read (none are set)",
    "json_serialize_sql": "SQL held as data is how a query hides another; nothing here runs it, nor needs it",
    "json_deserialize_sql": "as json_serialize_sql",
    "json_serialize_plan": "binds the SQL text it is given: the names it would reveal are not checked",
}
# Not deterministic, reviewed one by one: no file, setting, sequence or other session's state.
REVIEWED_VOLATILE = {
    "random": "a number", "uuid": "a number", "uuidv4": "a number", "uuidv7": "a number and the clock",
    "gen_random_uuid": "a number",
    "error": "raises the caller's message; it cannot choose the server's status or code (errors._Carried)",
}
# Names DuckDB's parser gives to syntax that are not catalog functions.
PARSER_FUNCTIONS = {"unnest": "SELECT unnest([1, 2])", "unlist": "unnest's alias"}
# Table functions, each reviewed: none reads a file, a setting or another catalog.
TABLE_FUNCTIONS = {
    "range": "numbers", "generate_series": "numbers", "unnest": "the elements of a list",
    "repeat": "a value n times", "json_each": "a JSON value's elements", "json_tree": "a JSON value's tree",
    "ducklake_snapshots": "the lake's snapshot list (id, time, changes): time travel needs it",
    "ducklake_current_snapshot": "a snapshot id", "ducklake_last_committed_snapshot": "a snapshot id",
    "ducklake_table_info": "per table: id, uuid, file and delete-file counts and sizes (no paths)",
}
# The engine's scalar UDFs that are part of the SQL surface (the lh_* UDFs behind the macros are not).
ENGINE_FUNCTIONS = {"lakehouse_version": "the package version"}
OTHER_CATALOGS = frozenset({"memory", "system", "temp"})
# Where a function may be looked up: DuckDB's own and the macro database ("memory"), not macros a lake
# might hold (the lake's owner writes those, and only names on the list are called anyway).
FUNCTION_CATALOGS = frozenset({"", "system", "memory"})
FUNCTION_SCHEMAS = frozenset({"", "main", "pg_catalog"})
OTHER_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
REFUSAL_CODES = frozenset({"forbidden", "statement_not_allowed", "multiple_statements", "function_not_allowed",
                           "relation_not_allowed", "where_not_allowed", "truth_rule_forbidden", "read_only"})
_PATH_CHARS = re.compile(r"[./\\:~]")
_SUGGESTION = re.compile(r'\n?Did you mean "([^"]*)"\?')
_HIDDEN_CATALOG = re.compile(r"__ducklake_metadata_\w+|__lh_meta_\w+")


@dataclasses.dataclass(frozen=True)
class Policy:
    scalars: frozenset[str]  # scalar, aggregate and window functions (and scalar macros)
    tables: frozenset[str]  # table functions and table macros
    engine: frozenset[str]  # the engine's own functions and macros (refused in `where` and truth rules)
    internal: frozenset[str]  # DuckDB's own views and tables (sqlite_master, duckdb_tables, pg_class, ...)

    def function_problem(self, name: Name) -> str | None:
        if name.catalog not in FUNCTION_CATALOGS or name.schema not in FUNCTION_SCHEMAS:
            return f"function {name.qualified}() is not allowed here: only DuckDB's own and the engine's functions"
        allowed = self.tables if name.kind == "table_function" else self.scalars
        if name.name in allowed:
            return None
        close = difflib.get_close_matches(name.name, sorted(allowed), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}()?" if close else ""
        where = "in FROM" if name.kind == "table_function" else "here"
        return f"function {name.name}() is not allowed {where} (not on the read-only allow list){hint}"

    def relation_problem(self, name: Name) -> str | None:
        cat, schema, rel = name.catalog, name.schema, name.name
        if not cat and not schema and rel in name.ctes:
            return None
        if not rel or _PATH_CHARS.search(rel):
            return f"reading files by name ({rel!r}) is not allowed here"
        if cat and cat != LAKE:
            return f"catalog {cat!r} is not readable here: only the lake's tables"
        if schema and schema != LAKE and (schema in OTHER_CATALOGS or schema in OTHER_SCHEMAS or schema.startswith("__")):
            return f"{schema!r} is not readable here: only the lake's tables"
        if rel in self.internal and not (cat == LAKE and schema):
            return f"{rel!r} is one of DuckDB's internal views, not a lake table"
        return None

    def show_problem(self, name: Name) -> str | None:
        show = name.node.get("show_type")
        if name.node.get("query") is not None or (show == "SHOW_UNQUALIFIED" and name.name == "tables"):
            return None  # DESCRIBE / SUMMARIZE (the query is walked), SHOW TABLES (the lake's main schema)
        if show == "SHOW_FROM":
            return self.relation_problem(Name("relation", "x", name.schema, name.catalog))
        return f"SHOW {name.name.upper() or 'ALL'} is not available here: use SHOW TABLES or DESCRIBE <table>"

    def check(self, parsed: Parsed) -> None:
        for name in sql_tree.names(parsed.tree):
            if name.kind == "relation":
                problem, code = self.relation_problem(name), "relation_not_allowed"
            elif name.kind == "show":
                problem = self.show_problem(name)
                code = "relation_not_allowed" if name.node.get("show_type") == "SHOW_FROM" else "statement_not_allowed"
            else:
                problem, code = self.function_problem(name), "function_not_allowed"
            if problem:
                raise Forbidden(problem, code=code)

    def visible(self, qualified: str) -> bool:
        """Whether a name DuckDB suggests ("Did you mean ...?") is one the caller may read or call."""
        parts = qualified.lower().split(".")
        if len(parts) == 1 and (parts[0] in self.scalars or parts[0] in self.tables):
            return True
        rel = Name("relation", parts[-1], parts[-2] if len(parts) > 1 else "", parts[-3] if len(parts) > 2 else "")
        return len(parts) <= 3 and self.relation_problem(rel) is None


@functools.cache
def policy() -> Policy:
    """The allow list, read once from DuckDB's own function catalog (module docstring)."""
    cur = sql_tree.parser()
    rows = cur.execute("SELECT lower(function_name), function_type, stability, macro_definition "
                       "FROM duckdb_functions()").fetchall()
    internal = frozenset(r[0] for r in cur.execute(
        "SELECT lower(view_name) FROM duckdb_views() UNION SELECT lower(table_name) FROM duckdb_tables()").fetchall())
    scalar_ok: dict[str, bool] = {n: True for n in (*REVIEWED_VOLATILE, *PARSER_FUNCTIONS)}
    bodies = [(name, kind, body or "") for name, kind, _, body in rows if kind in ("macro", "table_macro")]
    parsed = sql_tree.trees([b if kind == "table_macro" else f"SELECT {b}" for _, kind, b in bodies])
    macros: dict[str, list[tuple[str, list[Name] | None]]] = {}
    for (name, kind, _), tree in zip(bodies, parsed):
        macros.setdefault(name, []).append((kind, _macro_calls(tree)))
    for name, kind, stability, _ in rows:
        if kind in ("scalar", "aggregate") and name not in REVIEWED_VOLATILE:
            ok = stability in DETERMINISTIC and name not in REFUSED_FUNCTIONS
            scalar_ok[name] = scalar_ok.get(name, True) and ok
    # A macro's body may call a function of its own name (pg_catalog.current_database calls main's).
    scalars = {n for n, ok in scalar_ok.items() if ok}
    tables = set(TABLE_FUNCTIONS)
    admitted: set[str] = set()
    changed = True
    while changed:  # a macro may call another macro: admit them until nothing changes
        changed = False
        for name, overloads in macros.items():
            if name in admitted or not scalar_ok.get(name, True):
                continue
            if all(calls is not None and all(c.name in (tables if c.kind == "table_function" else scalars)
                                             for c in calls) for _kind, calls in overloads):
                (tables if overloads[0][0] == "table_macro" else scalars).add(name)
                admitted.add(name)
                changed = True
    scalars -= {n for n in macros if n not in admitted}
    engine_tables, engine_scalars = _engine_macros()
    return Policy(frozenset({*scalars, *engine_scalars, *ENGINE_FUNCTIONS}), frozenset({*tables, *engine_tables}),
                  frozenset({*engine_tables, *engine_scalars, *ENGINE_FUNCTIONS}), internal)


def _macro_calls(tree: dict[str, Any] | None) -> list[Name] | None:
    """The functions a macro body calls; None when it names a relation (which one is not ours to know)
    or cannot be read."""
    if tree is None:
        return None
    found = list(sql_tree.names(tree))
    if any(n.kind in ("relation", "show") and n.name not in n.ctes for n in found):
        return None
    return [n for n in found if n.kind in ("function", "table_function")]


def _engine_macros() -> tuple[set[str], set[str]]:
    """(table macros, scalar macros) that lakehouse/sqlviews defines."""
    tables, scalars = set(), set()
    for _name, text in sqlviews.sql_files():
        for chunk in re.split(r"CREATE\s+OR\s+REPLACE\s+MACRO\s+", text)[1:]:
            name = re.match(r"\w+", chunk).group().lower()
            (tables if re.search(r"\)\s+AS\s+TABLE\b", chunk.split(";")[0]) else scalars).add(name)
    return tables, scalars


def check_query(sql: str) -> Parsed:
    """One read-only statement whose every name is allowed, parsed; Forbidden / InvalidInput if not."""
    parsed = sql_tree.parse_query(sql)
    policy().check(parsed)
    return parsed


def check_expression(text: str, *, what: str = "where", code: str = "where_not_allowed") -> str:
    """`text` if it is ONE SQL expression over a row: allowed functions, no subquery, no table, none of the
    engine's functions (a model call per row); Forbidden(code) / InvalidInput if not. The caller places it
    inside parentheses on lines of its own (a `--` comment then ends where the text does)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{what} must be a non-empty SQL expression", code=f"invalid_{what}")
    try:
        parsed = sql_tree.parse(f"SELECT (\n{text}\n)")
    except InvalidInput as exc:  # DuckDB's "LINE 2:" context would point into our wrapper
        raise InvalidInput(f"{what} is not a single SQL expression: {exc.message.splitlines()[0]}",
                           code=f"invalid_{what}") from None
    except Forbidden:
        raise Forbidden(f"{what} must be one SQL expression", code=code) from None
    node = parsed.tree.get("node", {})
    rest = {k: v for k, v in node.items() if k in ("from_table", "where_clause", "group_expressions", "having",
                                                    "qualify", "modifiers", "sample", "cte_map")}
    items = node.get("select_list", [])
    if (parsed.dynamic_pivot or node.get("type") != "SELECT_NODE" or len(items) != 1 or items[0].get("class") == "STAR"
            or rest.get("from_table", {}).get("type") != "EMPTY"
            or any(_filled(v) for k, v in rest.items() if k != "from_table")):
        raise Forbidden(f"{what} must be one SQL expression", code=code)
    if any(n.get("class") == "PARAMETER" for n in _dicts(node)):
        raise InvalidInput(f"{what} cannot take parameters (?, $name): write the values", code=f"invalid_{what}")
    pol = policy()
    for name in sql_tree.names(node):
        if name.kind in ("relation", "show", "table_function"):
            raise Forbidden(f"{what} may not read tables or call table functions", code=code)
        if name.name in pol.engine:
            raise Forbidden(f"{what} may not call {name.name}(): the engine's functions run per row", code=code)
        if pol.function_problem(name):
            raise Forbidden(f"{what} may not call {name.name}(): it is not on the read-only allow list", code=code)
    if _any_subquery(node):
        raise Forbidden(f"{what} may not contain subqueries", code=code)
    return text.strip()


def clean_message(message: str) -> str:
    """A DuckDB error without suggestions naming what the caller may not read, nor hidden catalogs' names."""
    pol = policy()
    message = _SUGGESTION.sub(lambda m: m.group(0) if pol.visible(m.group(1)) else "", message)
    return _HIDDEN_CATALOG.sub("<catalog metadata>", message)


def _filled(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("map")) if "map" in value else bool(value)
    return bool(value)


def _any_subquery(tree: Any) -> bool:
    return any(n.get("class") == "SUBQUERY" for n in _dicts(tree))


def _dicts(tree: Any) -> Iterable[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)

"""The macros of lakehouse/sqlviews/ call every function as `system.main.<name>`.

On a lake cursor (the user's, default catalog `lake`) an unqualified function name is looked up through the
lake's schema too, which starts a DuckLake transaction: ~5 ms of catalog reads per query. One unqualified
`getvariable('lh_profile')` in the search macros made `SELECT * FROM vector_search(...)` on `lake.cursor()`
7.9 ms instead of 1.8 ms."""

from __future__ import annotations

import json
from typing import Any

import lakehouse

# Resolved by DuckDB's binder itself, never looked up in a catalog.
BINDER_FUNCTIONS = {"unnest"}


def _calls(node: Any) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    if isinstance(node, dict):
        if node.get("class") == "FUNCTION" and not node.get("is_operator"):
            found.append((node.get("catalog", ""), node.get("schema", ""), node["function_name"]))
        for value in node.values():
            found += _calls(value)
    elif isinstance(node, list):
        for value in node:
            found += _calls(value)
    return found


def test_every_function_a_macro_calls_is_qualified(tmp_path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        cur = lake.cursor()
        macros = cur.execute(
            "SELECT DISTINCT function_name, function_type, macro_definition FROM duckdb_functions() "
            "WHERE database_name = 'temp' AND function_type IN ('macro', 'table_macro') AND NOT internal"
        ).fetchall()
        assert {"vector_search", "embed", "chat", "observer_ops", "truth_check"} <= {m[0] for m in macros}
        unqualified = {}
        for name, kind, body in macros:
            sql = body if kind == "table_macro" else f"SELECT {body}"
            tree = json.loads(cur.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
            assert not tree["error"], (name, tree)
            bad = [f for c, s, f in _calls(tree) if (c, s) != ("system", "main") and f not in BINDER_FUNCTIONS]
            if bad:
                unqualified[name] = bad
        assert unqualified == {}

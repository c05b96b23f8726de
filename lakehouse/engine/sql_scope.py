"""What a profile's SQL may read: every relation of the statement inside the profile, views resolved.

On the read-only path (`safe_sql`), after the allow list (`sql_policy`) has passed a statement, a caller bound to
a profile is held to its datasets and corpora, on the same DuckDB parse (`sql_tree.names`: every relation in any
position: FROM, joins, CTE bodies, subqueries, lateral joins, set operations, DESCRIBE/SUMMARIZE queries):

- `x`, `main.x`, `lake.main.x`: a dataset (or a table of the lake's main schema) matching the dataset patterns. A
  view of the lake that is not a dataset is read through: the relations of its definition are checked the same
  way (so a view over another profile's table is refused); a merge-on-read dataset's own parts
  (`lh_store.<dataset>__base` / `__delta`) belong to it;
- `lh_corpus.<corpus>`: a corpus's rows, for a corpus matching the corpus patterns;
- anything else of the lake (`lh.*`: profiles, journal, playbooks of every corpus) is refused, as are the table
  functions that list what the lake holds (`ducklake_snapshots`, `ducklake_table_info`), the macros that read
  every caller's records (`observer_ops`, `storage_errors`, `hnsw_trials`) and `SHOW TABLES`.

The engine's table functions that take a corpus or dataset name as text (`vector_search('c', ...)`,
`matrix_search(corpora := [...])`, `lakehouse_datasets()`, ...) are not read here: they call operations, and the
operations check the profile (the read path hands the profile to them through the DuckDB variable `lh_profile`,
which the engine's macros pass on: a caller's SQL can neither set a variable nor call `getvariable`).
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

import duckdb

from lakehouse.engine import sql_tree
from lakehouse.errors import Forbidden, InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.profiles import Profile

VARIABLE = "lh_profile"
# Table functions and macros a profile may not call: they list the lake's tables or every caller's records.
REFUSED = frozenset({"ducklake_snapshots", "ducklake_table_info", "observer_ops", "storage_errors", "hnsw_trials"})
_MAX_VIEW_DEPTH = 16


@functools.lru_cache(maxsize=1024)
def references(sql: str) -> tuple[tuple[str, str, str, str], ...]:
    """(kind, catalog, schema, name) of every relation, table function and SHOW of one checked statement; CTEs
    left out."""
    parsed = sql_tree.parse_query(sql)
    out = []
    for n in sql_tree.names(parsed.tree):
        if n.kind == "relation" and not n.catalog and not n.schema and n.name in n.ctes:
            continue
        if n.kind == "show" and n.node.get("query") is not None:
            continue  # DESCRIBE / SUMMARIZE <query>: its relations are yielded on their own
        if n.kind in ("relation", "table_function", "show"):
            out.append((n.kind, n.catalog, n.schema, n.name))
    return tuple(dict.fromkeys(out))


class LakeNames:
    """The lake's datasets and the queries of its other views, read once per snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: int | None = None
        self.datasets: frozenset[str] = frozenset()
        self.views: dict[str, str] = {}

    def at(self, cur: duckdb.DuckDBPyConnection, snapshot: int) -> LakeNames:
        with self._lock:
            if snapshot != self._snapshot:
                self.datasets = frozenset(r[0] for r in cur.execute("SELECT name FROM lake.lh.datasets").fetchall())
                self.views = dict(cur.execute("SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'lake' "
                                              "AND schema_name = 'main'").fetchall())
                self._snapshot = snapshot
            return self


def check(names: LakeNames, sql: str, profile: Profile) -> None:
    """Forbidden (profile_forbidden) unless everything `sql` reads is inside `profile` (module docstring)."""
    _check_refs(names, references(sql), profile, 0)


def _check_refs(names: LakeNames, refs: tuple[tuple[str, str, str, str], ...], profile: Profile,
                depth: int) -> None:
    for kind, catalog, schema, name in refs:
        if kind == "table_function":
            if name in REFUSED:
                raise _refused(f"{name}() lists what every caller may not see")
        elif kind == "show":
            raise _refused("SHOW lists every table; use lakehouse_datasets() or DESCRIBE <table>")
        else:
            _check_relation(names, catalog, schema, name, profile, depth)


def _check_relation(names: LakeNames, catalog: str, schema: str, name: str, profile: Profile,
                    depth: int) -> None:
    if schema == "lake" and not catalog:  # lake.x: the catalog, main schema
        catalog, schema = "lake", ""
    if catalog not in ("", "lake"):
        raise _refused(f"{name!r} is outside profile {profile.name!r}")
    if schema in ("", "main"):
        if not profile.has_dataset(name):
            raise _refused(f"dataset {name!r} is outside profile {profile.name!r}")
        if name not in names.datasets and name in names.views:
            if depth >= _MAX_VIEW_DEPTH:
                raise _refused(f"view {name!r} nests views too deeply to be checked")
            _check_refs(names, references(_view_query(name, names.views[name])), profile, depth + 1)
        return
    if schema == "lh_corpus" and profile.has_corpus(name):
        return
    if schema == "lh_store" and depth > 0 and "__" in name and profile.has_dataset(name.rsplit("__", 1)[0]):
        return  # a merge-on-read dataset's base or delta, read through its view
    raise _refused(f"{schema}.{name} is outside profile {profile.name!r}")


def _view_query(name: str, create: str) -> str:
    try:
        query = view_query(create)
        references(query)  # parsed here, so a view that cannot be read is this error, not a later one
    except (InvalidInput, Forbidden):
        raise _refused(f"view {name!r} could not be checked against the profile") from None
    return query


def view_query(create: str) -> str:
    """The query of `CREATE VIEW name [(columns)] AS query;` (DuckDB's own text of a view), by DuckDB's tokens."""
    depth = 0
    for offset, text in sql_tree.tokens(create):
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and text.upper() == "AS":
            return create[offset + 2:].strip().rstrip(";")
    raise InvalidInput("not a view definition", code="invalid_view")


def _refused(message: str) -> Forbidden:
    return Forbidden(message, code="profile_forbidden")

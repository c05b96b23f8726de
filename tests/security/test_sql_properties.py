"""Random compositions of SQL: a forbidden name anywhere in code is refused; in a string or a comment it is
harmless text and the query runs. Never a 500, and the lake never changes.

Queries are built from fragments (functions and relations from pools of allowed and forbidden names) nested
in subqueries, CTEs, lateral joins, UNIONs, lambdas, CASE, macro arguments, EXPLAIN and DESCRIBE, and
mentioned inside string literals, dollar-quoted strings and comments.
"""

from __future__ import annotations

import dataclasses

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from secured_lake import Target

from lakehouse.errors import Forbidden, LakehouseError

ALLOWED_SCALARS = ["upper('a')", "length('abc')", "abs(-1)", "coalesce(NULL, 1)", "now()", "random()",
                   "list_value(1, 2)", "1 + 1", "lower('X')", "current_database()", "lakehouse_version()"]
FORBIDDEN_SCALARS = ["getenv('HOME')", "current_setting('threads')", "json_serialize_sql('SELECT 1')",
                     "sleep_ms(1)", "nextval('s')", "write_log('x')", "read_text('/etc/passwd')", "pg_get_viewdef(1)",
                     "current_query()", "\"GETENV\"('HOME')", "system.main.getenv('HOME')"]
ALLOWED_TABLES = ["workers", "range(3)", "generate_series(1, 3)", "unnest([1, 2])", "ducklake_snapshots('lake')",
                  "lake.main.workers", "vector_search('wc', 'forklift', 2)", "lakehouse_datasets()"]
FORBIDDEN_TABLES = ["read_text('/etc/passwd')", "glob('/tmp/*')", "query('SELECT 1')", "query_table('workers')",
                    "duckdb_settings()", "duckdb_databases()", "ducklake_options('lake')",
                    "ducklake_expire_snapshots('lake', dry_run => true)", "sqlite_scan('x.db', 't')",
                    "checkpoint('lake')", "json_execute_serialized_sql(json_serialize_sql('SELECT 1'))", "sqlite_master",
                    "__ducklake_metadata_lake.ducklake_snapshot", "information_schema.tables", "'/etc/passwd'",
                    "pragma_database_list", "system.main.read_blob('/etc/passwd')"]
REFUSED = {"function_not_allowed", "relation_not_allowed"}


@dataclasses.dataclass(frozen=True)
class Sql:
    text: str
    bad: bool  # a forbidden name in code

    def __add__(self, other: Sql) -> Sql:
        return Sql(self.text + other.text, self.bad or other.bad)


def lit(text: str) -> Sql:
    return Sql(text, False)


def _quoted(fragment: Sql) -> st.SearchStrategy[Sql]:
    """The fragment as text a query carries but never runs: a string, a dollar-quoted string, a comment."""
    text = fragment.text
    forms = [lit("'" + text.replace("'", "''") + "'"), lit("/* " + text.replace("*/", "").replace("/*", "") + " */ 1")]
    if "$" not in text:  # dollar quotes do not nest
        forms.append(lit("$x$" + text + "$x$"))
    return st.sampled_from(forms)


leaf_scalar = st.one_of(st.sampled_from([lit(s) for s in ALLOWED_SCALARS]),
                        st.sampled_from([Sql(s, True) for s in FORBIDDEN_SCALARS]))
leaf_table = st.one_of(st.sampled_from([lit(t) for t in ALLOWED_TABLES]),
                       st.sampled_from([Sql(t, True) for t in FORBIDDEN_TABLES]))


def scalars(tables: st.SearchStrategy[Sql]) -> st.SearchStrategy[Sql]:
    def extend(inner: st.SearchStrategy[Sql]) -> st.SearchStrategy[Sql]:
        return st.one_of(
            inner.map(lambda s: lit("coalesce(") + s + lit(", NULL)")),
            inner.map(lambda s: lit("CASE WHEN random() < 2 THEN ") + s + lit(" END")),
            inner.map(lambda s: lit("list_transform([1], x -> ") + s + lit(")")),
            tables.map(lambda t: lit("(SELECT count(*) FROM ") + t + lit(" AS q)")),
            inner.flatmap(_quoted),
            st.one_of(leaf_scalar, leaf_table).flatmap(_quoted),
        )
    return st.recursive(leaf_scalar, extend, max_leaves=4)


def tables() -> st.SearchStrategy[Sql]:
    def extend(inner: st.SearchStrategy[Sql]) -> st.SearchStrategy[Sql]:
        return st.one_of(
            inner.map(lambda t: lit("(SELECT * FROM ") + t + lit(" AS s)")),
            st.tuples(inner, scalars(inner)).map(lambda p: lit("(SELECT * FROM ") + p[0]
                                                 + lit(" AS a, LATERAL (SELECT ") + p[1] + lit(" AS v) AS l)")),
            st.tuples(inner, inner).map(lambda p: lit("(SELECT 1 AS c FROM ") + p[0]
                                        + lit(" AS u UNION ALL SELECT 1 FROM ") + p[1] + lit(" AS w)")),
        )
    return st.recursive(leaf_table, extend, max_leaves=3)


@st.composite
def queries(draw: st.DrawFn) -> Sql:
    table = draw(tables())
    scalar = draw(scalars(tables()))
    body = lit("SELECT ") + scalar + lit(" AS v FROM ") + table + lit(" AS t")
    if draw(st.booleans()):
        body = body + lit(" WHERE ") + draw(scalars(tables())) + lit(" IS NOT NULL")
    shape = draw(st.sampled_from(["plain", "cte", "explain", "describe", "macro", "in"]))
    if shape == "cte":
        return lit("WITH c AS (") + body + lit(") SELECT * FROM c")
    if shape == "explain":
        return lit("EXPLAIN ") + body
    if shape == "describe":
        return lit("DESCRIBE ") + body
    if shape == "macro":
        return lit("SELECT count(*) FROM vector_search('wc', 'forklift', 2, ids := (SELECT list(1) FROM (") + body \
            + lit(") AS m))")
    if shape == "in":
        return lit("SELECT count(*) FROM workers WHERE id IN (SELECT 1 FROM (") + body + lit(") AS i)")
    return body


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=queries())
def test_forbidden_anywhere_is_refused_and_nothing_else_is(target: Target, sql: Sql) -> None:
    before = target.state()
    try:
        target.lake.query(sql.text, timeout_s=10)
    except Forbidden as exc:
        assert sql.bad and exc.code in REFUSED, (sql.text, exc.code, exc.message)
    except LakehouseError as exc:  # a read that DuckDB cannot bind or run: the caller's error, never ours
        assert not sql.bad and exc.status < 500, (sql.text, exc.code, exc.message)
    else:
        assert not sql.bad, sql.text
    assert target.state() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=queries())
def test_over_http_refusals_are_403_and_nothing_is_a_500(target: Target, sql: Sql) -> None:
    resp = target.http.post("/sql", json={"sql": sql.text})
    assert resp.status_code < 500, (sql.text, resp.text)
    assert (resp.status_code == 403) == sql.bad, (sql.text, resp.text)

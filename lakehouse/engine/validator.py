"""Per-dataset validation rules, declared in the lake (`lh.validation_rules`) and evaluated as SQL over
any relation through a cursor, so ingest can run them inside its transaction over the new table state:
a failing `error` rule then refuses the ingest (`raise_for_errors` raises, the transaction rolls back),
a failing `warn` rule is only reported.

    rules = [parse_rule({"dataset": "workers", "name": "id_unique", "kind": "unique",
                         "params": {"columns": ["id"]}, "severity": "error"})]
    results = validate(cur, "lake.main.workers", rules)     # -> [RuleResult(...)]

Kinds and their params (unknown params are refused; NULLs pass every rule but not_null):

    | kind       | params                                   | fails for                                       |
    |------------|------------------------------------------|-------------------------------------------------|
    | schema     | column, type (a DuckDB type name)        | the column is missing or of another type        |
    | not_null   | column                                   | each NULL                                       |
    | unique     | columns (list) or column                 | each row whose key (no NULL part) repeats       |
    | range      | column, min and/or max (numbers, or ISO  | each value outside [min, max] or not comparable |
    |            | dates / timestamps)                      |                                                 |
    | allowed    | column, values (all strings, all numbers | each value not among them                       |
    |            | or all booleans)                         |                                                 |
    | regex      | column, pattern (RE2, full match)        | each value (as text) the pattern does not match |
    | row_count  | min and/or max                           | a row count outside [min, max]                  |
    | freshness  | column, max_age_hours                    | max(column) older than that, or no value        |
    | references | column, dataset, ref_column (default:    | each value absent from dataset.ref_column       |
    |            | the same name)                           | (compared as text when the types differ)        |

Safety: identifiers are checked and double-quoted, relation names are dotted identifiers, every value
(bounds, allowed values, patterns) is a bound parameter, and a type name must look like one and is
resolved by DuckDB before use. Values are compared through TRY_CAST, so a rule never raises a bind or
conversion error halfway through the caller's transaction. Samples are ordered (ORDER BY ALL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from lakehouse.engine import catalog
from lakehouse.engine.names import check_name, quote_ident
from lakehouse.errors import InvalidInput, Unprocessable

KINDS = ("schema", "not_null", "unique", "range", "allowed", "regex", "row_count", "freshness", "references")
SEVERITIES = ("error", "warn")
SAMPLE_ROWS = 5
MAX_SAMPLE_ROWS = 100
# kind -> (required params, optional params)
_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "schema": (frozenset({"column", "type"}), frozenset()),
    "not_null": (frozenset({"column"}), frozenset()),
    "unique": (frozenset(), frozenset({"column", "columns"})),
    "range": (frozenset({"column"}), frozenset({"min", "max"})),
    "allowed": (frozenset({"column", "values"}), frozenset()),
    "regex": (frozenset({"column", "pattern"}), frozenset()),
    "row_count": (frozenset(), frozenset({"min", "max"})),
    "freshness": (frozenset({"column", "max_age_hours"}), frozenset()),
    "references": (frozenset({"column", "dataset"}), frozenset({"ref_column"})),
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\d*\])*$")
_MAX_COLUMN = 255

@dataclasses.dataclass(frozen=True)
class Rule:
    dataset: str
    name: str
    kind: str
    params: Mapping[str, Any]
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "name": self.name, "kind": self.kind, "params": dict(self.params),
                "severity": self.severity}


@dataclasses.dataclass(frozen=True)
class RuleResult:
    """One rule over one relation: passed, how many rows (or values) failed (None when the rule could not
    apply, e.g. a missing column: then `message` says why), and a few failing rows."""

    rule: str
    kind: str
    severity: str
    passed: bool
    count: int | None
    sample: list[dict[str, Any]]
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "severity": self.severity, "passed": self.passed,
                "count": self.count, "sample": [{k: _jsonable(v) for k, v in row.items()} for row in self.sample],
                "message": self.message}


# -- rule definitions ------------------------------------------------------------------------------


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A checked Rule from {dataset, name, kind, params, severity}; InvalidInput names the bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a validation rule must be an object", code="invalid_rule")
    unknown = sorted(set(raw) - {"dataset", "name", "kind", "params", "severity"})
    if unknown:
        raise _bad(unknown[0], "is not a rule field (dataset, name, kind, params, severity)")
    dataset = _named(raw, "dataset", "dataset")
    name = _named(raw, "name", "rule")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _bad("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}", name)
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise _bad("severity", f"must be 'error' or 'warn', got {severity!r}", name)
    params = raw.get("params", {})
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            raise _bad("params", "is not valid JSON", name) from None
    if not isinstance(params, Mapping):
        raise _bad("params", "must be an object", name)
    return Rule(dataset, name, kind, _check_params(kind, dict(params), name), severity)


def _named(raw: Mapping[str, Any], field: str, what: str, rule: str | None = None, label: str | None = None) -> str:
    try:
        return check_name(raw.get(field), what)
    except InvalidInput as exc:
        raise _bad(label or field, f"is invalid: {exc.message}", rule) from None


def _check_params(kind: str, params: dict[str, Any], rule: str) -> dict[str, Any]:
    required, optional = _PARAMS[kind]
    unknown, absent = sorted(set(params) - required - optional), sorted(required - set(params))
    if unknown:
        raise _bad(f"params.{unknown[0]}", f"is not a parameter of {kind} rules "
                                           f"({', '.join(sorted(required | optional))})", rule)
    if absent:
        raise _bad(f"params.{absent[0]}", "is required", rule)
    for key in ("column", "ref_column"):
        if key in params:
            _column(params[key], f"params.{key}", rule)
    if kind == "schema":
        params["type"] = _canonical_type(params["type"], rule)
    elif kind == "unique":
        if ("column" in params) == ("columns" in params):
            raise _bad("params.columns", "give either column or columns (a non-empty list)", rule)
        cols = [params.pop("column")] if "column" in params else params["columns"]
        if not isinstance(cols, list) or not cols:
            raise _bad("params.columns", "must be a non-empty list of column names", rule)
        params["columns"] = [_column(c, "params.columns", rule) for c in cols]
    elif kind in ("range", "row_count"):
        _bounds(kind, params, rule)
    elif kind == "allowed":
        values = params["values"]
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, float)) for v in values):
            raise _bad("params.values", "must be a non-empty list of strings, numbers or booleans", rule)
        if len({_value_kind(v) for v in values}) != 1:
            raise _bad("params.values", "must be all strings, all numbers or all booleans", rule)
    elif kind == "regex":
        _check_pattern(params["pattern"], rule)
    elif kind == "freshness":
        hours = params["max_age_hours"]
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or hours <= 0:
            raise _bad("params.max_age_hours", "must be a positive number", rule)
    elif kind == "references":
        _named(params, "dataset", "dataset", rule, "params.dataset")
    return params


def _column(value: Any, field: str, rule: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_COLUMN or "\x00" in value:
        raise _bad(field, f"must be a column name (1-{_MAX_COLUMN} characters), got {value!r}", rule)
    return value


def _bounds(kind: str, params: dict[str, Any], rule: str) -> None:
    if "min" not in params and "max" not in params:
        raise _bad("params.min", "give min, max or both", rule)
    kinds = set()
    for key in ("min", "max"):
        if key not in params:
            continue
        value = params[key]
        if kind == "row_count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(f"params.{key}", "must be a non-negative integer", rule)
        elif isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                raise _bad(f"params.{key}", f"must be a number or an ISO date / timestamp, got {value!r}", rule) from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(f"params.{key}", f"must be a number or an ISO date / timestamp, got {value!r}", rule)
        kinds.add(type(value) is str)
    if len(kinds) > 1:
        raise _bad("params.max", "min and max must both be numbers or both be timestamps", rule)
    if "min" in params and "max" in params and _order_key(params["min"]) > _order_key(params["max"]):
        raise _bad("params.min", "is greater than max", rule)


def _order_key(value: Any) -> Any:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _value_kind(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"


def _canonical_type(value: Any, rule: str) -> str:
    """DuckDB's own name for a type ('int' -> 'INTEGER'); the regex keeps anything but a type name out."""
    if not isinstance(value, str) or not _TYPE.match(value.strip()):
        raise _bad("params.type", f"must be a DuckDB type name such as INTEGER or VARCHAR[], got {value!r}", rule)
    canonical = _duckdb_type(value.strip())
    if canonical is None:
        raise _bad("params.type", f"is not a DuckDB type: {value!r}", rule)
    return canonical


def _check_pattern(value: Any, rule: str) -> None:
    if not isinstance(value, str) or not value:
        raise _bad("params.pattern", "must be a non-empty string", rule)
    problem = _pattern_problem(value)
    if problem:
        raise _bad("params.pattern", f"is not a valid RE2 pattern ({problem})", rule)


@functools.lru_cache(maxsize=256)
def _duckdb_type(name: str) -> str | None:
    try:
        with duckdb.connect() as con:
            return con.execute(f"SELECT typeof(CAST(NULL AS {name}))").fetchone()[0]
    except duckdb.Error:
        return None


@functools.lru_cache(maxsize=256)
def _pattern_problem(pattern: str) -> str | None:
    try:
        with duckdb.connect() as con:
            con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchone()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None


def _bad(field: str, problem: str, rule: str | None = None) -> InvalidInput:
    where = f"rule {rule!r}: " if rule else ""
    return InvalidInput(f"{where}{field} {problem}", code="invalid_rule", field=field, rule=rule)


# -- storage ---------------------------------------------------------------------------------------


def put_rules(cur: duckdb.DuckDBPyConnection, rules: Sequence[Rule]) -> int:
    """Insert or replace rules by (dataset, name); run inside `lake.transaction`. Returns how many."""
    for rule in rules:
        cur.execute("DELETE FROM lake.lh.validation_rules WHERE dataset = ? AND name = ?", [rule.dataset, rule.name])
        cur.execute("INSERT INTO lake.lh.validation_rules VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [rule.dataset, rule.name, rule.kind, json.dumps(dict(rule.params), sort_keys=True), rule.severity])
    return len(rules)


def load_rules(cur: duckdb.DuckDBPyConnection, dataset: str | None) -> list[Rule]:
    """The dataset's rules (every dataset's when None), by dataset and name; each is checked again (the table
    may have been edited by hand)."""
    if dataset is not None:
        check_name(dataset)
    if not catalog.table_exists(cur, "lh", "validation_rules"):
        return []
    return _select_rules(cur, dataset)


def _select_rules(cur: duckdb.DuckDBPyConnection, dataset: str | None) -> list[Rule]:
    where, params = ("", []) if dataset is None else ("WHERE dataset = ?", [dataset])
    rows = cur.execute("SELECT dataset, name, kind, params, severity FROM lake.lh.validation_rules "
                       f"{where} ORDER BY dataset, name", params).fetchall()
    return [parse_rule(dict(zip(("dataset", "name", "kind", "params", "severity"), r))) for r in rows]


def delete_rule(cur: duckdb.DuckDBPyConnection, dataset: str, name: str) -> bool:
    """Remove one rule; True when it existed. Run inside `lake.transaction`."""
    if not catalog.table_exists(cur, "lh", "validation_rules"):
        return False
    n = cur.execute("DELETE FROM lake.lh.validation_rules WHERE dataset = ? AND name = ?", [dataset, name]).fetchone()[0]
    return n > 0


# -- evaluation ------------------------------------------------------------------------------------


def relation_sql(name: str) -> str:
    """A dotted relation name (`workers`, `lake.main.workers`) as quoted SQL; InvalidInput otherwise."""
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 3 or not all(_IDENT.match(p) for p in parts):
        raise InvalidInput(f"invalid relation name {name!r}: use [catalog.][schema.]table identifiers",
                           code="invalid_relation")
    return ".".join(quote_ident(p) for p in parts)


def validate(cur: duckdb.DuckDBPyConnection, relation: str, rules: Sequence[Rule], *, sample: int = SAMPLE_ROWS,
             now: dt.datetime | None = None, ref_schema: str = "lake.main") -> list[RuleResult]:
    """Evaluate `rules` over `relation` (see the module docstring), in the order given. `now` (UTC) is the
    reference time of freshness rules; `references` rules read `<ref_schema>.<dataset>`."""
    rel = relation_sql(relation)
    check_sample(sample)
    ref_parts = ref_schema.split(".") if isinstance(ref_schema, str) else []
    if len(ref_parts) != 2:
        raise InvalidInput(f"ref_schema must be <catalog>.<schema>, got {ref_schema!r}", code="invalid_relation")
    relation_sql(ref_schema)
    columns = _columns(cur, rel)
    ctx = _Context(cur, rel, columns, sample, now or dt.datetime.now(dt.UTC), ref_parts)
    return [_evaluate(ctx, rule) for rule in rules]


def check_sample(sample: Any) -> int:
    """A sample size: an integer from 0 to MAX_SAMPLE_ROWS."""
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= MAX_SAMPLE_ROWS:
        raise InvalidInput(f"sample must be an integer from 0 to {MAX_SAMPLE_ROWS}, got {sample!r}", code="invalid_sample")
    return sample


def raise_for_errors(results: Sequence[RuleResult]) -> None:
    """Unprocessable (code validation_failed) listing the failed `error` rules, if any."""
    failed = [r for r in results if r.severity == "error" and not r.passed]
    if failed:
        names = ", ".join(f"{r.rule} ({r.count if r.count is not None else r.message})" for r in failed)
        raise Unprocessable(f"validation failed: {names}", code="validation_failed",
                            failures=[r.to_dict() for r in failed])


def check_ingest(cur: duckdb.DuckDBPyConnection, dataset: str) -> list[dict[str, Any]]:
    """Run the dataset's rules over its new state, inside the ingest's transaction: Unprocessable when an
    `error` rule fails (the caller's transaction then rolls back), else the failed `warn` rules as dicts.
    A writer's lake always has lh.validation_rules (ENGINE_DDL at open): no existence check, which would list
    every table of the catalog (~40 ms over SQLite) on every ingest."""
    rules = _select_rules(cur, dataset)
    if not rules:
        return []
    results = validate(cur, f"lake.main.{dataset}", rules)
    raise_for_errors(results)
    return [r.to_dict() for r in results if not r.passed]


@dataclasses.dataclass(frozen=True)
class _Context:
    cur: duckdb.DuckDBPyConnection
    rel: str
    columns: dict[str, str]  # name -> DuckDB type
    sample: int
    now: dt.datetime
    ref: list[str]  # [catalog, schema]


def _columns(cur: duckdb.DuckDBPyConnection, rel: str) -> dict[str, str]:
    return {row[0]: row[1] for row in cur.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}


def _evaluate(ctx: _Context, rule: Rule) -> RuleResult:
    p = rule.params
    needed = [c for c in ([p["column"]] if "column" in p else []) + list(p.get("columns", [])) if c not in ctx.columns]
    if rule.kind == "schema":
        actual = ctx.columns.get(p["column"])
        passed = actual == p["type"]
        message = "" if passed else (f"column {p['column']!r} is missing" if actual is None
                                     else f"column {p['column']!r} is {actual}, expected {p['type']}")
        sample = [] if passed else [{"column": p["column"], "expected": p["type"], "actual": actual}]
        return _result(rule, passed, 0 if passed else 1, sample, message)
    if needed:
        return _result(rule, False, None, [], f"column {needed[0]!r} is not in {ctx.rel}")
    if rule.kind == "row_count":
        n = ctx.cur.execute(f"SELECT count(*) FROM {ctx.rel}").fetchone()[0]
        passed = p.get("min", 0) <= n and ("max" not in p or n <= p["max"])
        return _result(rule, passed, n, [], "" if passed else f"{n} rows, expected {_span(p)}")
    if rule.kind == "freshness":
        return _freshness(ctx, rule)
    if rule.kind == "unique":
        return _unique(ctx, rule)
    if rule.kind == "references":
        return _references(ctx, rule)
    where, params = _condition(rule)
    return _failing_rows(ctx, rule, ctx.rel, where, params)


def _condition(rule: Rule) -> tuple[str, list[Any]]:
    """(SQL predicate selecting the failing rows, its parameters) of a row-wise rule."""
    p = rule.params
    col = quote_ident(p["column"])
    if rule.kind == "not_null":
        return f"{col} IS NULL", []
    if rule.kind == "regex":
        return f"{col} IS NOT NULL AND NOT coalesce(regexp_full_match(TRY_CAST({col} AS VARCHAR), ?), false)", \
            [p["pattern"]]
    if rule.kind == "allowed":
        target = {"string": "VARCHAR", "number": "DOUBLE", "boolean": "BOOLEAN"}[_value_kind(p["values"][0])]
        return (f"{col} IS NOT NULL AND NOT coalesce(list_contains(?::{target}[], TRY_CAST({col} AS {target})), false)",
                [list(p["values"])])
    # range: numbers compare as DOUBLE, ISO strings as TIMESTAMP; a value that does not cast fails
    target = "TIMESTAMP" if isinstance(p.get("min", p.get("max")), str) else "DOUBLE"
    value = f"TRY_CAST({col} AS {target})"
    tests, params = [f"{value} IS NULL"], []
    for key, op in (("min", "<"), ("max", ">")):
        if key in p:
            tests.append(f"{value} {op} ?::{target}")
            params.append(p[key])
    return f"{col} IS NOT NULL AND ({' OR '.join(tests)})", params


def _failing_rows(ctx: _Context, rule: Rule, source: str, where: str, params: list[Any]) -> RuleResult:
    n = ctx.cur.execute(f"SELECT count(*) FROM {source} WHERE {where}", params).fetchone()[0]
    rows: list[dict[str, Any]] = []
    if n:
        res = ctx.cur.execute(f"SELECT * FROM {source} WHERE {where} ORDER BY ALL LIMIT ?", [*params, ctx.sample])
        names = [d[0] for d in res.description]
        rows = [dict(zip(names, r)) for r in res.fetchall()]
    return _result(rule, n == 0, n, rows, "" if n == 0 else f"{n} failing rows")


def _unique(ctx: _Context, rule: Rule) -> RuleResult:
    cols = ", ".join(quote_ident(c) for c in rule.params["columns"])
    not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in rule.params["columns"])
    dupes = f"SELECT {cols}, count(*) AS _lh_rows FROM {ctx.rel} WHERE {not_null} GROUP BY ALL HAVING count(*) > 1"
    n = ctx.cur.execute(f"SELECT coalesce(sum(_lh_rows), 0)::BIGINT FROM ({dupes})").fetchone()[0]
    rows: list[dict[str, Any]] = []
    if n:
        res = ctx.cur.execute(f"{dupes} ORDER BY _lh_rows DESC, {cols} LIMIT ?", [ctx.sample])
        rows = [{"key": dict(zip(rule.params["columns"], r[:-1])), "rows": r[-1]} for r in res.fetchall()]
    return _result(rule, n == 0, n, rows, "" if n == 0 else f"{n} rows share a key")


def _references(ctx: _Context, rule: Rule) -> RuleResult:
    p = rule.params
    ref_col = p.get("ref_column", p["column"])
    ref_table = p["dataset"]
    if not _relation_exists(ctx.cur, ctx.ref[0], ctx.ref[1], ref_table):
        return _result(rule, False, None, [], f"referenced dataset {ref_table!r} does not exist")
    ref = relation_sql(f"{ctx.ref[0]}.{ctx.ref[1]}.{ref_table}")
    ref_types = _columns(ctx.cur, ref)
    if ref_col not in ref_types:
        return _result(rule, False, None, [], f"column {ref_col!r} is not in {ref_table!r}")
    mine, theirs = f"t.{quote_ident(p['column'])}", f"r.{quote_ident(ref_col)}"
    if ref_types[ref_col] != ctx.columns[p["column"]]:
        mine, theirs = f"TRY_CAST({mine} AS VARCHAR)", f"TRY_CAST({theirs} AS VARCHAR)"
    source = f"(SELECT t.* FROM {ctx.rel} AS t ANTI JOIN {ref} AS r ON {mine} = {theirs} " \
             f"WHERE t.{quote_ident(p['column'])} IS NOT NULL)"
    return _failing_rows(ctx, rule, source, "TRUE", [])


def _relation_exists(cur: duckdb.DuckDBPyConnection, database: str, schema: str, name: str) -> bool:
    return cur.execute(
        "SELECT count(*) FROM (SELECT database_name, schema_name, table_name AS name FROM duckdb_tables() "
        "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views()) "
        "WHERE database_name = ? AND schema_name = ? AND name = ?", [database, schema, name]).fetchone()[0] > 0


def _freshness(ctx: _Context, rule: Rule) -> RuleResult:
    newest = ctx.cur.execute(f"SELECT max({quote_ident(rule.params['column'])}) FROM {ctx.rel}").fetchone()[0]
    stamp = _as_utc(newest)
    if stamp is None:
        return _result(rule, False, None, [], f"column {rule.params['column']!r} has no timestamp value")
    now = ctx.now if ctx.now.tzinfo is not None else ctx.now.replace(tzinfo=dt.UTC)
    age = (now - stamp).total_seconds() / 3600
    passed = age <= rule.params["max_age_hours"]
    return _result(rule, passed, 0 if passed else 1, [] if passed else [{"newest": newest, "age_hours": round(age, 3)}],
                   "" if passed else f"newest value is {age:.1f} h old, over {rule.params['max_age_hours']} h")


def _as_utc(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def _span(p: Mapping[str, Any]) -> str:
    return f"[{p.get('min', '-inf')}, {p.get('max', 'inf')}]"


def _result(rule: Rule, passed: bool, count: int | None, sample: list[dict[str, Any]], message: str) -> RuleResult:
    return RuleResult(rule.name, rule.kind, rule.severity, passed, count, sample, message)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)

"""Truth rules: assertions about datasets, kept in TOML and checked through the read-only sandbox.

    [[rule]]
    name = "amount_positive"            # required, an identifier (names.check_name)
    dataset = "payments"                # required, a dataset of the lake (schema main)
    assert = "amount > 0"               # required, ONE SQL boolean expression over the dataset's columns
    severity = "error"                  # "error" (default) or "warn"
    message = "payments are positive"   # optional, shown with violations

    truth_check(toml_text, lake.query) -> {"ok", "violations": [{rule, severity, message, count, sample}],
                                           "passed": [names], "errors": [{rule, code, message}]}

Each rule runs as `SELECT count(*) FROM lake.main."<dataset>" WHERE NOT (<assert>)` and, when it finds
rows, a sample `SELECT * ... ORDER BY ALL LIMIT 5`. A row where the assertion is NULL is not a violation
(SQL CHECK semantics): write `x IS NOT NULL AND ...` to require a value.

The assertion is parsed with sqlglot before anything runs, and refused unless it is one expression
without statements, subqueries, tables, parameters, aggregates or window functions, whose functions are
on the read-only allow list (sql_policy.check_expression, on DuckDB's own parse) and do not call models
per row (chat, embed, lh_*, *_search). The SQL that runs is regenerated from the checked tree (comments
dropped), never the raw text, and goes through the caller's sandboxed `query` callable, which refuses
anything but a read again. A file with a refused rule runs nothing. A rule that fails at run time (an
unknown column, a missing dataset) is listed in `errors` and the other rules still run.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

import sqlglot
from sqlglot import exp

from lakehouse.engine.names import check_name, quote_ident
from lakehouse.engine.sql_policy import check_expression
from lakehouse.engine.validator import check_sample
from lakehouse.errors import Forbidden, InvalidInput, LakehouseError

log = logging.getLogger(__name__)

SEVERITIES = ("error", "warn")
SAMPLE_ROWS = 5
_REQUIRED = ("name", "dataset", "assert")
_KEYS = frozenset({*_REQUIRED, "severity", "message"})
_PER_ROW_MODELS = re.compile(r"^(chat|embed|lh_\w+|\w*_search)$", re.IGNORECASE)
_REFUSED_NODES: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Query, "a query"), (exp.Subquery, "a subquery"), (exp.Table, "a table"), (exp.From, "a FROM clause"),
    (exp.Exists, "EXISTS"), (exp.Placeholder, "a parameter"), (exp.Parameter, "a parameter"),
    (exp.AggFunc, "an aggregate"), (exp.Window, "a window function"),
    (exp.Command, "a command"), (exp.Pragma, "PRAGMA"), (exp.Set, "SET"), (exp.Copy, "COPY"),
    (exp.Attach, "ATTACH"), (exp.Detach, "DETACH"), (exp.Install, "INSTALL"), (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"), (exp.Delete, "DELETE"), (exp.Drop, "DROP"), (exp.Create, "CREATE"),
    (exp.Alter, "ALTER"), (exp.Use, "USE"),
)

Query = Callable[[str], Any]


@dataclasses.dataclass(frozen=True)
class TruthRule:
    name: str
    dataset: str
    assertion: str  # the checked, regenerated SQL expression
    severity: str = "error"
    message: str = ""

    def count_sql(self) -> str:
        return f"SELECT count(*) FROM {self._source()} WHERE NOT ({self.assertion})"

    def sample_sql(self, rows: int = SAMPLE_ROWS) -> str:
        return f"SELECT * FROM {self._source()} WHERE NOT ({self.assertion}) ORDER BY ALL LIMIT {int(rows)}"

    def _source(self) -> str:
        return f"lake.main.{quote_ident(self.dataset)}"


def parse_rules(text: str) -> list[TruthRule]:
    """Every `[[rule]]` of a TOML text, checked; InvalidInput / Forbidden names the rule and the field."""
    if not isinstance(text, str):
        raise InvalidInput("truth rules must be TOML text", code="invalid_truth_rules")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"truth rules are not valid TOML: {exc}", code="invalid_truth_rules") from None
    extra = sorted(set(doc) - {"rule"})
    if extra:
        raise InvalidInput(f"unknown top-level key {extra[0]!r}: truth rules are [[rule]] tables",
                           code="invalid_truth_rules", field=extra[0])
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        raise InvalidInput("'rule' must be an array of tables ([[rule]])", code="invalid_truth_rules", field="rule")
    rules: list[TruthRule] = []
    for i, raw in enumerate(raw_rules, 1):
        rule = _parse_rule(raw, i)
        if any(r.name == rule.name for r in rules):
            raise _bad(rule.name, "name", "is used by an earlier rule")
        rules.append(rule)
    return rules


def check_assertion(text: Any, rule: str = "?") -> str:
    """The assertion as SQL regenerated from its checked sqlglot tree (module docstring), or an error."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(rule, "assert", "must be a non-empty SQL boolean expression")
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except (sqlglot.errors.SqlglotError, RecursionError) as exc:
        raise _bad(rule, "assert", f"is not a SQL expression: {str(exc).splitlines()[0]}") from None
    if len(trees) != 1:
        raise _forbidden(rule, f"must be one expression, got {len(trees)} statements")
    tree = trees[0]
    if not isinstance(tree, exp.Condition) or isinstance(tree, exp.Star):
        raise _forbidden(rule, f"must be a boolean expression, not {tree.key.upper()}")
    for node in tree.walk():
        for cls, what in _REFUSED_NODES:
            if isinstance(node, cls):
                raise _forbidden(rule, f"may not contain {what} ({node.sql(dialect='duckdb')[:80]!r})")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()) or ""
            if _PER_ROW_MODELS.match(name):
                raise _forbidden(rule, f"may not call {name.lower()}()")
    try:  # the functions, on DuckDB's own parse: sqlglot's names are not always DuckDB's
        check_expression(text, what="assert", code="truth_rule_forbidden")
    except Forbidden as exc:
        raise _forbidden(rule, exc.message.removeprefix("assert ")) from None
    except InvalidInput as exc:
        raise _bad(rule, "assert", f"is not a SQL expression: {exc.message}") from None
    return tree.sql(dialect="duckdb", comments=False)


def truth_check(rules_toml: str, query: Query, *, sample: int = SAMPLE_ROWS) -> dict[str, Any]:
    """Check every rule (module docstring) through `query(sql)`, which returns a QueryResult-like object
    (`.rows`, `.columns` of {name, type}) or a dict with those keys; e.g. `lake.query`."""
    check_sample(sample)
    rules = parse_rules(rules_toml)
    violations: list[dict[str, Any]] = []
    passed: list[str] = []
    errors: list[dict[str, Any]] = []
    for rule in rules:
        try:
            columns, rows = _result(query(rule.count_sql()))
            count = int(rows[0][0])
            if count == 0:
                passed.append(rule.name)
                continue
            columns, rows = _result(query(rule.sample_sql(sample)))
        except LakehouseError as exc:
            log.info("truth rule %s could not run: %s", rule.name, exc.message)
            errors.append({"rule": rule.name, "code": exc.code, "message": exc.message})
            continue
        names = [c["name"] if isinstance(c, Mapping) else str(c) for c in columns]
        violations.append({"rule": rule.name, "dataset": rule.dataset, "severity": rule.severity,
                           "message": rule.message, "count": count,
                           "sample": [dict(zip(names, row)) for row in rows]})
    ok = not errors and not any(v["severity"] == "error" for v in violations)
    return {"ok": ok, "violations": violations, "passed": passed, "errors": errors}


def _parse_rule(raw: Any, index: int) -> TruthRule:
    label = f"#{index}"
    if not isinstance(raw, Mapping):
        raise _bad(label, "rule", "must be a table")
    if isinstance(raw.get("name"), str) and raw["name"]:
        label = raw["name"]
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise _bad(label, unknown[0], f"is not a rule key ({', '.join(sorted(_KEYS))})")
    for key in _REQUIRED:
        if key not in raw:
            raise _bad(label, key, "is required")
    for key in ("name", "dataset"):
        try:
            check_name(raw[key], "rule" if key == "name" else "dataset")
        except InvalidInput as exc:
            raise _bad(label, key, f"is invalid: {exc.message}") from None
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise _bad(label, "severity", f"must be 'error' or 'warn', got {severity!r}")
    message = raw.get("message", "")
    if not isinstance(message, str):
        raise _bad(label, "message", "must be a string")
    return TruthRule(raw["name"], raw["dataset"], check_assertion(raw["assert"], label), severity, message)


def _result(result: Any) -> tuple[list[Any], list[Any]]:
    if isinstance(result, Mapping):
        return list(result["columns"]), list(result["rows"])
    return list(result.columns), list(result.rows)


def _bad(rule: str, field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"truth rule {rule}: {field} {problem}", code="invalid_truth_rule", rule=rule, field=field)


def _forbidden(rule: str, problem: str) -> Forbidden:
    return Forbidden(f"truth rule {rule}: assert {problem}", code="truth_rule_forbidden", rule=rule, field="assert")

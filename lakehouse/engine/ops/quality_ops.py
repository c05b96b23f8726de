"""Data quality operations: validation rules declared in the lake (rules.put / list / delete / check, also run
by every ingest of their dataset) and truth rules checked on demand (truth.check).

Validation rules live in `lh.validation_rules` (engine/validator.py); an ingest runs its dataset's rules inside
its transaction, so a failing `error` rule refuses it and nothing changes. Truth rules are TOML assertions
(engine/truth.py) run through the read-only sandbox: an assertion that would write, read a file or reach
another database is refused before anything runs, whichever surface sent it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from lakehouse.engine import catalog, validator
from lakehouse.engine.names import check_name
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.data_ops import check_sql_size
from lakehouse.engine.ops.types import DatasetName, NonBlank
from lakehouse.engine.safe_sql import run_query
from lakehouse.engine.truth import truth_check
from lakehouse.errors import InvalidInput, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

SampleRows = Annotated[int, Field(ge=0, le=validator.MAX_SAMPLE_ROWS, description="failing rows shown per rule")]


class RulesPut(Input):
    rules: list[dict[str, Any]] = Field(min_length=1, max_length=1000, description=(
        "[{dataset, name, kind, params, severity: error | warn}]; the same dataset and name replaces a rule"))


def _put(lake: Lake, inp: RulesPut) -> dict[str, Any]:
    parsed = []
    for i, raw in enumerate(inp.rules):
        try:
            parsed.append(validator.parse_rule(raw))
        except InvalidInput as exc:
            raise InvalidInput(f"rules[{i}]: {exc.message}", code=exc.code, field="rules") from None
    seen: set[tuple[str, str]] = set()
    for rule in parsed:
        if (rule.dataset, rule.name) in seen:
            raise InvalidInput(f"rule {rule.name!r} of dataset {rule.dataset!r} is given twice", code="invalid_rule",
                               field="rules")
        seen.add((rule.dataset, rule.name))
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        stored = lake.ctx.transaction(cur, lambda c: validator.put_rules(c, parsed))
    return {"stored": stored, "rules": [r.to_dict() for r in parsed]}


class RulesList(Input):
    dataset: DatasetName | None = Field(None, description="one dataset's rules (default: every dataset's)")


def _list(lake: Lake, inp: RulesList) -> list[dict[str, Any]]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        return [r.to_dict() for r in validator.load_rules(cur, inp.dataset)]


class RuleName(Input):
    dataset: DatasetName
    name: NonBlank


def _delete(lake: Lake, inp: RuleName) -> dict[str, Any]:
    name = check_name(inp.name, "rule")
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        if not lake.ctx.transaction(cur, lambda c: validator.delete_rule(c, inp.dataset, name)):
            raise NotFound(f"dataset {inp.dataset!r} has no validation rule {name!r}", code="rule_not_found")
    return {"deleted": name, "dataset": inp.dataset}


class RulesCheck(Input):
    dataset: DatasetName
    sample: SampleRows = validator.SAMPLE_ROWS


def _check(lake: Lake, inp: RulesCheck) -> dict[str, Any]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        if catalog.dataset_row(cur, inp.dataset) is None:
            raise NotFound(f"no dataset named {inp.dataset!r}", code="dataset_not_found")
        rules = validator.load_rules(cur, inp.dataset)
        results = validator.validate(cur, f"lake.main.{inp.dataset}", rules, sample=inp.sample) if rules else []
    failed = [r.rule for r in results if not r.passed and r.severity == "error"]
    return {"dataset": inp.dataset, "passed": not failed, "failed": failed,
            "warnings": [r.rule for r in results if not r.passed and r.severity == "warn"],
            "results": [r.to_dict() for r in results]}


class TruthCheck(Input):
    rules: NonBlank = Field(description="TOML: [[rule]] tables of name, dataset, assert, severity?, message?")
    sample: SampleRows = validator.SAMPLE_ROWS


def _truth(lake: Lake, inp: TruthCheck) -> dict[str, Any]:
    check_sql_size(lake, inp.rules, "rules")
    s = lake.settings
    return truth_check(inp.rules, lambda sql: run_query(lake.ctx, sql, max_rows=s.max_rows, timeout_s=s.query_timeout_s),
                       sample=inp.sample)


OPS = [
    Op("rules.put", "Declare validation rules of datasets (checked by every ingest; a failing error rule refuses it).",
       RulesPut, _put, output=dict[str, Any], writes=True, http="POST /v1/rules", cli="lakehouse rules put FILE",
       count=lambda d: d["stored"]),
    Op("rules.list", "The validation rules of one dataset, or of all.", RulesList, _list, output=list[dict[str, Any]],
       http="GET /v1/rules", cli="lakehouse rules list", count=len),
    Op("rules.delete", "Delete one validation rule of a dataset.", RuleName, _delete, output=dict[str, Any],
       writes=True, http="DELETE /v1/rules/<dataset>/<name>", cli="lakehouse rules delete DATASET NAME"),
    Op("rules.check", "Run a dataset's validation rules now: each rule's result, failing rows as samples.",
       RulesCheck, _check, output=dict[str, Any], http="POST /v1/rules/<dataset>/check",
       cli="lakehouse rules check DATASET", count=lambda d: len(d["results"]),
       summary=lambda d: {"dataset": d["dataset"], "passed": d["passed"], "failed": d["failed"]}),
    Op("truth.check", "Check TOML truth rules (SQL assertions over datasets) in the read-only sandbox.", TruthCheck,
       _truth, output=dict[str, Any], http="POST /v1/truth/check", sql="truth_check(rules_toml)",
       cli="lakehouse truth check FILE", count=lambda d: len(d["violations"]) + len(d["passed"]),
       summary=lambda d: {"ok": d["ok"], "violations": [v["rule"] for v in d["violations"]],
                          "errors": [e["rule"] for e in d["errors"]]}),
]

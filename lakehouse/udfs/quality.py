"""The function behind the `truth_check` macro: TOML truth rules checked in the read-only sandbox.

    SELECT rule, status, count FROM truth_check('
        [[rule]]
        name = "amount_positive"
        dataset = "payments"
        assert = "amount > 0"
    ') WHERE status <> 'passed';
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ops import entrance
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

TRUTH_SQL = ("STRUCT(rule VARCHAR, status VARCHAR, dataset VARCHAR, severity VARCHAR, count BIGINT, message VARCHAR, "
             "sample VARCHAR)[]")


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    @udf_errors
    def lh_truth_check(profile: str | None, rules: str, sample: int | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            out = lake.ops.call("truth.check", rules=rules, sample=5 if sample is None else sample)
        rows = [{"rule": v["rule"], "status": "violated", "dataset": v["dataset"], "severity": v["severity"],
                 "count": v["count"], "message": v["message"], "sample": json.dumps(v["sample"], default=str)}
                for v in out["violations"]]
        rows += [{"rule": e["rule"], "status": "error", "dataset": None, "severity": None, "count": None,
                  "message": f"{e['code']}: {e['message']}", "sample": None} for e in out["errors"]]
        rows += [{"rule": name, "status": "passed", "dataset": None, "severity": None, "count": 0, "message": None,
                  "sample": None} for name in out["passed"]]
        return rows

    con.create_function("lh_truth_check", lh_truth_check, ["VARCHAR", "VARCHAR", "BIGINT"], TRUTH_SQL, type="native",
                        null_handling="special", side_effects=True)

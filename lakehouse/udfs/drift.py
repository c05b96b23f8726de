"""Drift functions behind the `scorer_drift`, `playbook_drift` and `embedding_drift` macros.

    SELECT * FROM scorer_drift() WHERE from_category <> to_category;
    SELECT corpus, count(*) FILTER (NOT found) AS drifted FROM playbook_drift(k := 5) GROUP BY corpus;
    SELECT * FROM embedding_drift('workers', {'generation': 1}, {'generation': 2});
    SELECT * FROM embedding_drift('workers', '{"ids_sql": "SELECT id FROM workers WHERE state = ''IL''"}',
                                  {'since': TIMESTAMP '2026-11-01'}, tests := ['ks', 'mmd']);
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ops import entrance
from lakehouse.errors import InvalidInput
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

SCORER_SQL = "STRUCT(from_category VARCHAR, to_category VARCHAR, count BIGINT, scorer_version VARCHAR)[]"
PLAYBOOK_SQL = ("STRUCT(id VARCHAR, corpus VARCHAR, query VARCHAR, answer_id VARCHAR, recorded_at TIMESTAMP, "
                "found BOOLEAN, rank BIGINT, error VARCHAR)[]")
EMBEDDING_SQL = ("STRUCT(name VARCHAR, statistic DOUBLE, p_value DOUBLE, threshold DOUBLE, drifted BOOLEAN, "
                 "overall BOOLEAN)[]")


def selection(raw: str | None, side: str) -> Any:
    """The macro sends to_json(a): a JSON object (a struct literal), or a JSON string holding one (text)."""
    if raw is None:
        raise InvalidInput(f"embedding_drift needs {side}: {{'generation': N}}, {{'ids_sql': '...'}} or "
                           "{'since': ..., 'until': ...}", code="missing_field", field=side)
    value = json.loads(raw)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidInput(f"{side} is neither a struct nor JSON text: {value[:80]!r}", code=f"invalid_{side}",
                               field=side) from None
    return value


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    call = lake.ops.call

    @udf_errors
    def lh_scorer_drift(profile: str | None, kind: str | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            out = call("drift.scorer", kind=kind)
        return [{"from_category": c["from"], "to_category": c["to"], "count": c["count"],
                 "scorer_version": out["scorer_version"]} for c in out["shift_matrix"]]

    @udf_errors
    def lh_playbook_drift(profile: str | None, corpus: str | None, k: int | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            out = call("drift.playbooks", corpus=corpus, k=10 if k is None else k)
        return [{**p, "recorded_at": datetime.datetime.fromisoformat(p["recorded_at"])} for p in out["playbooks"]]

    @udf_errors
    def lh_embedding_drift(profile: str | None, corpus: str, a: str | None, b: str | None, tests: list[str] | None,
                           seed: int | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            out = call("drift.embeddings", corpus=corpus, a=selection(a, "a"), b=selection(b, "b"), tests=tests,
                       seed=0 if seed is None else seed)
        return [{k: t[k] for k in ("name", "statistic", "p_value", "threshold", "drifted")} | {"overall": out["drifted"]}
                for t in out["tests"]]

    con.create_function("lh_scorer_drift", lh_scorer_drift, ["VARCHAR", "VARCHAR"], SCORER_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_playbook_drift", lh_playbook_drift, ["VARCHAR", "VARCHAR", "BIGINT"], PLAYBOOK_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_embedding_drift", lh_embedding_drift,
                        ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]", "BIGINT"],
                        EMBEDDING_SQL, type="native", null_handling="special", side_effects=True)

"""`benchmarks.vectors` runs end to end on a tiny corpus with the cheap peers (no timing assertions)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import vectors


def test_vectors_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "vectors.json"
    rc = vectors.main(["--n", "2000", "--queries", "20", "--peers", "numpy,usearch", "--no-sweep",
                       "--filtered-queries", "10", "--filtered-sql-queries", "3", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in ("config", "build", "load", "single", "filtered", "checks", "environment", "unavailable",
                "profile", "expansion_search"):
        assert key in res, key
    assert res["config"]["n"] == 2000 and res["config"]["queries"] == 20
    assert set(res["build"]) >= {"lakehouse", "usearch"}
    assert res["build"]["lakehouse"]["seconds"] > 0
    assert set(res["single"]) >= {"lakehouse_python", "usearch", "numpy"}
    rec = res["recording"]  # the SQL path with each op recorded vs not: both measured, the ratio reported
    assert rec["p50_on_s"] > 0 and rec["p50_off_s"] > 0 and rec["ratio"] == pytest.approx(rec["p50_on_s"] / rec["p50_off_s"])
    assert any(row["metric"].startswith("sql p50, recording") for row in res["checks"])

    def check_recall(entry: dict) -> None:
        assert 0.0 <= entry["recall"] <= 1.0
        assert entry["p50_s"] > 0 and not math.isnan(entry["p50_s"])

    for entry in res["single"].values():
        check_recall(entry)
    assert res["single"]["numpy"]["recall"] == pytest.approx(1.0)
    assert set(res["filtered"]) == {"0.01", "0.1", "0.2", "0.5"}
    for entry in res["filtered"].values():
        assert entry["subset_rows"] > 0
        for who in ("lakehouse_python", "lakehouse_python_text_ids", "numpy", "lakehouse_sql", "lakehouse_sql_readonly",
                    "lakehouse_sql_text_ids", "lakehouse_sql_lake_table"):
            check_recall(entry[who])
        for who in ("lakehouse_python", "lakehouse_python_text_ids", "lakehouse_sql", "lakehouse_sql_readonly",
                    "lakehouse_sql_text_ids", "lakehouse_sql_lake_table"):
            assert entry[who]["min_rows"] == 10 and entry[who]["recall"] >= 0.9, who  # right rows whatever the path
        assert entry["duckdb_id_list"]["p50_s"] > 0
    for row in res["checks"]:
        assert {"metric", "lakehouse", "peers", "target", "passed"} <= set(row)

"""`python -m benchmarks drift` runs end to end on tiny data and writes sane JSON (no timing asserts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import __main__ as dispatch
from benchmarks import drift


def test_drift_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "drift.json"
    rc = dispatch.main(["drift", "--n", "1500", "--dim", "16", "--max-rows", "800", "--mmd-rows", "150",
                        "--classifier-rows", "400", "--permutations", "20", "--repeat", "2", "--json", str(out)])
    assert rc == 0  # no --check: a missed target would not fail the run
    res = json.loads(out.read_text())
    assert res["benchmark"] == "drift"
    assert res["params"]["n"] == 1500 and res["params"]["permutations"] == 20
    assert set(res["environment"]) >= {"python", "duckdb", "lakehouse", "cpus"}
    assert res["first_call_s"] > 0
    # the classifier's peer needs scikit-learn (the bench extra): without it, no classifier and no total
    expected = [k for k in ("ks", "psi", "mmd", "classifier") if k not in res["unavailable"]]
    assert list(res["comparisons"]) == expected + ([] if res["unavailable"] else ["total"])
    assert set(res["unavailable"]) <= {"classifier"}
    for key, c in res["comparisons"].items():
        assert c["subject_s"] > 0 and c["peer_s"] > 0, key
        assert len(c["subject_samples"]) == 2, key
        assert math.isclose(c["ratio"], c["subject_s"] / c["peer_s"], rel_tol=1e-6), key
        assert c["target"] is None and c["passed"] is None, key
    (check,) = res["checks"]
    assert check["target_s"] == drift.TOTAL_TARGET_S and check["passed"] is (check["seconds"] < drift.TOTAL_TARGET_S)
    assert res["all_passed"] is check["passed"]
    ours = res["verdicts"]["lakehouse"]
    assert [t["name"] for t in ours["tests"]] == ["ks", "psi", "mmd", "classifier"]
    for name, peer in res["verdicts"]["peer"].items():
        assert set(peer) == {"statistic", "p_value", "drifted"}, name


def test_drift_is_a_listed_benchmark() -> None:
    from benchmarks import available

    assert "drift" in available()

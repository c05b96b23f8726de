"""Smoke test of `python -m benchmarks.ingest` on tiny data: it runs and writes sane JSON (no timing asserts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import __main__ as dispatch
from benchmarks import ingest

EXPECTED = ("ingest", "ingest_with_open", "recording_ingest", "query_group-by", "query_filtered",
            "recording_group-by", "recording_filtered")


@pytest.mark.slow
def test_ingest_benchmark_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    assert ingest.main(["--rows", "2000", "--repeat", "1", "--query-repeat", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["benchmark"] == "ingest"
    assert data["params"]["rows"] == 2000
    assert set(data["environment"]) >= {"python", "duckdb", "lakehouse", "cpus"}
    assert tuple(data["comparisons"]) == EXPECTED
    for key, c in data["comparisons"].items():
        assert c["subject_s"] > 0 and c["peer_s"] > 0, key
        assert c["ratio"] > 0, key
        assert all(s > 0 for s in c["subject_samples"] + c["peer_samples"]), key
        assert math.isclose(c["ratio"], c["subject_s"] / c["peer_s"], rel_tol=1e-6), key
        assert c["passed"] is (None if c["target"] is None else c["subject_s"] / c["peer_s"] <= c["target"]), key
    assert len(data["comparisons"]["query_group-by"]["subject_samples"]) == 2
    assert data["comparisons"]["ingest"]["target"] == ingest.INGEST_TARGET
    assert data["comparisons"]["query_group-by"]["target"] == ingest.QUERY_TARGET
    assert data["all_passed"] is all(c["passed"] is not False for c in data["comparisons"].values())


def test_dispatcher_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["no-such-benchmark"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert dispatch.main([]) == 2

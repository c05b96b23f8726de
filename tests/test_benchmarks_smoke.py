"""Smoke test of `python -m benchmarks.ingest` on tiny data: it runs and writes sane JSON (no timing asserts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not installed with the package
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as dispatch  # noqa: E402
from benchmarks import ingest  # noqa: E402

EXPECTED = ("ingest", "ingest_with_open", "query_group-by", "query_filtered",
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
        assert c["passed"] in (True, False, None), key
    assert len(data["comparisons"]["query_group-by"]["subject_samples"]) == 2
    assert data["comparisons"]["ingest"]["target"] == 1.5
    assert data["comparisons"]["query_group-by"]["target"] == 1.2
    assert isinstance(data["all_passed"], bool)


def test_dispatcher_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["no-such-benchmark"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert dispatch.main([]) == 2

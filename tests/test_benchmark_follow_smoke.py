"""`benchmarks.follow` runs end to end on a small dataset (no timing assertions: the numbers are the benchmark's)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import follow


def test_follow_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "follow.json"
    assert follow.main(["--rows", "2000", "--share", "0.01", "--embedder", "hash", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    cmp = res["comparisons"]["append"]
    assert res["params"] == {"rows": 2000, "new_rows": 20, "embedder": "hash"}
    assert cmp["subject_samples"][0] > 0 and cmp["peer_samples"][0] > 0 and cmp["target"] == follow.TARGET

"""Scorer drift (G3.5.A: a rule change shows as drift; G3.5.B: byte-identical JSON across runs and
processes) and audit-baseline drift."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.engine.audit_drift import audit_baseline_drift
from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.scorer import SCORER_VERSION, Rules, score_record
from lakehouse.engine.scorer_drift import scorer_drift
from lakehouse.errors import InvalidInput

FIXTURES = Path(__file__).parent / "fixtures" / "distillation"
ROOT = Path(__file__).parent.parent


def persisted_pairs() -> list[tuple[EvidenceRecord, str]]:
    """The fixtures with the categories today's scorer gave them, as a lake would have stored them."""
    rows = [json.loads(line) for line in (FIXTURES / "records.jsonl").read_text().splitlines() if line.strip()]
    return [(EvidenceRecord.from_dict(r["record"]), r["expect"]["category"]) for r in rows]


def test_same_scorer_no_drift():
    pairs = persisted_pairs()
    out = scorer_drift(pairs, entries=True)
    assert (out["total"], out["drifted"], out["scorer_version"], out["entries"]) == (len(pairs), 0, SCORER_VERSION, [])
    assert all(cell["from"] == cell["to"] for cell in out["shift_matrix"])
    assert sum(cell["count"] for cell in out["shift_matrix"]) == len(pairs)


def test_g35a_version_bump_that_changes_a_rule_drifts():
    strict = functools.partial(score_record, rules=Rules(version="distill-scorer/2", gold_coverage=1.01))
    out = scorer_drift(persisted_pairs(), strict, entries=True)
    gold = sum(1 for _, cat in persisted_pairs() if cat == "gold")
    assert out["scorer_version"] == "distill-scorer/2"
    assert out["drifted"] == gold > 0  # every gold record needs coverage > 1 now: none stays gold
    assert {"from": "gold", "to": "usable", "count": gold} in out["shift_matrix"]
    assert [e["id"] for e in out["entries"]] == sorted(e["id"] for e in out["entries"])
    assert all(e["from"] == "gold" and e["to"] == "usable" for e in out["entries"])


def test_shift_matrix_order_count_then_from_then_to():
    rec = EvidenceRecord("x", "op", "q", "a [1].", ["w"], ["w"], "m", 1)  # scores gold
    pairs = [(rec, "weak"), (rec, "usable"), (rec, "usable"), (rec, "gold"), (rec, "reject")]
    cells = [(c["from"], c["to"], c["count"]) for c in scorer_drift(pairs)["shift_matrix"]]
    assert cells == [("usable", "gold", 2), ("gold", "gold", 1), ("reject", "gold", 1), ("weak", "gold", 1)]


def test_empty_and_bad_input():
    assert scorer_drift([]) == {"total": 0, "drifted": 0, "scorer_version": None, "shift_matrix": []}
    with pytest.raises(InvalidInput, match="unknown category"):
        scorer_drift([(EvidenceRecord("x", "op", "q", "a"), "great")])


DRIFT_SCRIPT = """
import functools, json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.scorer import Rules, score_record
from lakehouse.engine.scorer_drift import scorer_drift
rows = [json.loads(l) for l in Path({fixture!r}).read_text().splitlines() if l.strip()]
pairs = [(EvidenceRecord.from_dict(r["record"]), r["expect"]["category"]) for r in rows]
strict = functools.partial(score_record, rules=Rules(version="v2", gold_coverage=1.01, usable_coverage=0.9))
sys.stdout.write(json.dumps(scorer_drift(pairs, strict, entries=True)))
"""


def test_g35b_byte_identical_json_across_runs_and_processes():
    strict = functools.partial(score_record, rules=Rules(version="v2", gold_coverage=1.01, usable_coverage=0.9))
    here = [json.dumps(scorer_drift(persisted_pairs(), strict, entries=True)) for _ in range(2)]
    assert here[0] == here[1]
    script = DRIFT_SCRIPT.format(root=str(ROOT), fixture=str(FIXTURES / "records.jsonl"))
    outs = []
    for seed in ("1", "2"):  # different str hashing: no set or dict order may leak into the output
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.append(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True).stdout)
    assert outs[0] == outs[1] == here[0].encode()
    assert json.loads(outs[0])["drifted"] > 0


# -- audit-baseline drift ----------------------------------------------------------------------------


def write_runs(root: Path, runs: list[dict]) -> Path:
    path = root / "auditor" / "audit_baselines.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    return path


def run(ts: str, by_check: dict, by_severity: dict | None = None) -> dict:
    return {"ts": ts, "head": f"c{ts[-2:]}", "counts": {"by_severity": by_severity or {}, "by_check": by_check}}


def test_audit_drift_against_the_mean_of_previous_runs(tmp_path):
    write_runs(tmp_path, [
        run("2025-01-01", {"ignored_old": 50}),  # outside previous=3
        run("2025-01-02", {"sql_concat": 2, "bare_except": 4}, {"error": 2, "warn": 4}),
        run("2025-01-03", {"sql_concat": 4, "bare_except": 4}, {"error": 4, "warn": 4}),
        run("2025-01-04", {"sql_concat": 3, "bare_except": 4, "todo": 1}, {"error": 3, "warn": 5}),
        run("2025-01-05", {"sql_concat": 9, "bare_except": 4, "new_check": 2}, {"error": 11, "warn": 4}),
    ])
    out = audit_baseline_drift(tmp_path, previous=3)  # a lake root works as well as the file
    assert out["latest"] == {"ts": "2025-01-05", "head": "c05"}
    assert out["baseline"] == {"runs": 3, "from_ts": "2025-01-02", "to_ts": "2025-01-04"}
    assert out["by_check"] == [
        {"name": "sql_concat", "latest": 9, "baseline_mean": 3.0, "delta": 6.0, "relative": 2.0, "direction": "more",
         "flagged": True},
        {"name": "new_check", "latest": 2, "baseline_mean": 0.0, "delta": 2.0, "relative": None, "direction": "more",
         "flagged": True},
        {"name": "todo", "latest": 0, "baseline_mean": 0.333333, "delta": -0.333333, "relative": -1.0,
         "direction": "less", "flagged": False},  # under min_delta
    ]
    assert [c["name"] for c in out["by_severity"]] == ["error", "warn"]
    assert out["by_severity"][1]["delta"] == pytest.approx(-0.333333)
    assert out["flagged"] == 3


def test_audit_drift_threshold_and_determinism(tmp_path):
    path = write_runs(tmp_path, [run("2025-01-01", {"a": 10, "b": 10}), run("2025-01-02", {"a": 12, "b": 8})])
    out = audit_baseline_drift(path, previous=5, threshold=0.25)
    assert [(c["name"], c["relative"], c["flagged"]) for c in out["by_check"]] == [("a", 0.2, False), ("b", -0.2, False)]
    assert json.dumps(out) == json.dumps(audit_baseline_drift(path, previous=5, threshold=0.25))


def test_audit_drift_with_one_run_has_no_baseline(tmp_path):
    path = write_runs(tmp_path, [run("2025-01-01", {"a": 1})])
    out = audit_baseline_drift(path)
    assert out["baseline"]["runs"] == 0 and out["by_check"] == [] and out["flagged"] == 0


@pytest.mark.parametrize(("content", "message"), [
    ("", "no audit runs"),
    ('{"ts": 1, "counts": {"by_check": {"a": 1}}}\nnope\n', "line 2"),
    ('{"ts": 1, "counts": {"by_check": {"a": -1}}}\n', "non-negative"),
    ('{"ts": 1}\n', "expected"),
])
def test_audit_drift_bad_files(tmp_path, content, message):
    path = tmp_path / "audit_baselines.jsonl"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        audit_baseline_drift(path)


def test_audit_drift_bad_arguments(tmp_path):
    path = write_runs(tmp_path, [run("a", {"x": 1})])
    with pytest.raises(InvalidInput, match="previous"):
        audit_baseline_drift(path, previous=0)
    with pytest.raises(InvalidInput, match="threshold"):
        audit_baseline_drift(path, threshold=-1)
    with pytest.raises(InvalidInput, match="no audit baselines"):
        audit_baseline_drift(tmp_path / "missing")

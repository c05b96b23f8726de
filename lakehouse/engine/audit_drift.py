"""Audit-baseline drift: does the latest audit run fire its checks more or less than recent runs did?

`<root>/auditor/audit_baselines.jsonl` holds one JSON object a line, appended per audit run:

    {"ts": "2025-01-05T10:00:00Z", "head": "<commit>", "counts": {"by_severity": {"error": 2, "warn": 7},
                                                              "by_check": {"sql_injection": 1, ...}}}

`audit_baseline_drift(path, previous=N)` compares the last line with the mean of the N lines before it,
per check and per severity (a name missing from a run counts 0 there). For each name that changed:

    delta     latest - baseline mean
    relative  delta / baseline mean, or None when the baseline mean is 0 (the check is new)
    flagged   |delta| >= min_delta and (relative is None or |relative| >= threshold)

Changes are sorted by |delta| (descending), then name; numbers are rounded to 6 decimals, so the same
file always gives the same JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lakehouse.errors import InvalidInput

BASELINES = Path("auditor") / "audit_baselines.jsonl"
_GROUPS = ("by_check", "by_severity")


def audit_baseline_drift(path: str | Path, previous: int = 5, *, threshold: float = 0.5,
                         min_delta: float = 1.0) -> dict[str, Any]:
    """Drift of the latest audit run against the mean of the `previous` runs before it (module docstring).
    `path` is the baselines file, or a lake root holding `auditor/audit_baselines.jsonl`."""
    if isinstance(previous, bool) or not isinstance(previous, int) or previous < 1:
        raise InvalidInput(f"previous must be a positive integer, got {previous!r}", code="invalid_previous")
    for name, value in (("threshold", threshold), ("min_delta", min_delta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InvalidInput(f"{name} must be a non-negative number, got {value!r}", code=f"invalid_{name}")
    file = Path(path)
    if file.is_dir():
        file = file / BASELINES
    runs = read_baselines(file)
    if not runs:
        raise InvalidInput(f"{file.name} holds no audit runs", code="no_audit_runs")
    latest, baseline = runs[-1], runs[-1 - previous:-1]
    out: dict[str, Any] = {
        "latest": {"ts": latest["ts"], "head": latest["head"]},
        "baseline": {"runs": len(baseline), "from_ts": baseline[0]["ts"] if baseline else None,
                     "to_ts": baseline[-1]["ts"] if baseline else None},
        "previous": previous, "threshold": threshold, "min_delta": min_delta,
    }
    for group in _GROUPS:
        out[group] = _changes([r["counts"][group] for r in baseline], latest["counts"][group], threshold,
                              min_delta) if baseline else []
    out["flagged"] = sum(1 for group in _GROUPS for c in out[group] if c["flagged"])
    return out


def read_baselines(path: Path) -> list[dict[str, Any]]:
    """The runs of a baselines file in file order; a malformed line raises InvalidInput naming it."""
    if not path.is_file():
        raise InvalidInput(f"no audit baselines at {path}", code="no_audit_runs")
    runs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            runs.append(_run(line, f"{path.name}, line {n}"))
    return runs


def _run(line: str, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise InvalidInput(f"{where}: not JSON ({exc})", code="invalid_audit_baseline") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("counts"), Mapping):
        raise InvalidInput(f"{where}: expected {{ts, head, counts: {{by_severity, by_check}}}}",
                           code="invalid_audit_baseline")
    counts = {}
    for group in _GROUPS:
        values = raw["counts"].get(group, {})
        if not isinstance(values, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                for k, v in values.items()):
            raise InvalidInput(f"{where}: counts.{group} must map names to non-negative numbers",
                               code="invalid_audit_baseline")
        counts[group] = dict(values)
    return {"ts": raw.get("ts"), "head": raw.get("head"), "counts": counts}


def _changes(before: Sequence[Mapping[str, float]], latest: Mapping[str, float], threshold: float,
             min_delta: float) -> list[dict[str, Any]]:
    names = sorted(set(latest).union(*before))
    changes = []
    for name in names:
        mean = sum(run.get(name, 0) for run in before) / len(before)
        now = latest.get(name, 0)
        delta = now - mean
        if delta == 0:
            continue
        relative = None if mean == 0 else delta / mean
        flagged = abs(delta) >= min_delta and (relative is None or abs(relative) >= threshold)
        changes.append({"name": name, "latest": now, "baseline_mean": round(mean, 6), "delta": round(delta, 6),
                        "relative": None if relative is None else round(relative, 6),
                        "direction": "more" if delta > 0 else "less", "flagged": flagged})
    changes.sort(key=lambda c: (-abs(c["delta"]), c["name"]))
    return changes

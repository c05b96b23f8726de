"""The result types of embedding drift: one `DriftTest` per statistic, gathered in a `DriftReport`.

Both serialise to JSON-stable dicts: floats rounded to 6 significant digits (p-values keep their
exponent: 1.23457e-40, not 0.0), keys and tests in a fixed order.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 6


def rounded(value: Any) -> Any:
    """`value` with every float rounded to SIGNIFICANT_DIGITS (recursing into lists and dicts)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class DriftTest:
    """One drift test: its statistic, p-value (None when the test has none), the threshold the decision
    compared against, whether it fired, and test-specific details (rows used, per-projection values...)."""

    name: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return rounded({"name": self.name, "statistic": float(self.statistic),
                        "p_value": None if self.p_value is None else float(self.p_value),
                        "threshold": float(self.threshold), "drifted": bool(self.drifted),
                        "details": self.details})


@dataclasses.dataclass(frozen=True)
class DriftReport:
    """The tests run (in a fixed order) and the overall verdict: drifted when at least `min_fired` fired."""

    drifted: bool
    tests: list[DriftTest]
    min_fired: int
    n_reference: int
    n_current: int
    dim: int
    seed: int

    @property
    def fired(self) -> list[str]:
        """Names of the tests that fired."""
        return [t.name for t in self.tests if t.drifted]

    def test(self, name: str) -> DriftTest:
        """The test called `name` (KeyError when it was not run)."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"drifted": self.drifted, "fired": self.fired,
                "rule": f"drifted when at least {self.min_fired} of {len(self.tests)} tests fire",
                "min_fired": self.min_fired, "n_reference": self.n_reference, "n_current": self.n_current,
                "dim": self.dim, "seed": self.seed, "tests": [t.to_dict() for t in self.tests]}

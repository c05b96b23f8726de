"""Lakehouse benchmarks: each module compares Lakehouse with a plain peer in one run.

Run one with `python -m benchmarks NAME [options]` or `python -m benchmarks.NAME [options]`; every
module here with a `main(argv)` (other than `common`) is a benchmark.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

_NOT_BENCHMARKS = {"common"}


def available() -> list[str]:
    """Names of the benchmark modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                  if not m.name.startswith("_") and m.name not in _NOT_BENCHMARKS)

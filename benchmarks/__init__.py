"""Lakehouse benchmarks: each module compares Lakehouse with a plain peer in one run.

Run one with `python -m benchmarks NAME [options]` or `python -m benchmarks.NAME [options]`.
"""

from __future__ import annotations

BENCHMARKS: tuple[str, ...] = ("ingest",)

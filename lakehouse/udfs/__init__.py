"""UDF families: SQL adapters over the operations catalog. Each public module here exposes
`register(con, lake, read_only)` (read_only: the sandboxed instance, whose calls may not write); all are
registered, in name order (modules starting with "_" are helpers)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


def register_all(con: duckdb.DuckDBPyConnection, lake: Lake, *, read_only: bool = False) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{info.name}").register(con, lake, read_only)

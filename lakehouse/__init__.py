"""Lakehouse: DuckDB as a lakehouse with vector search and a learning retrieval layer.

    import lakehouse
    lake = lakehouse.open("./lake")
    lake.ingest("workers.csv", "workers")
    lake.sql("SELECT role, count(*) FROM workers GROUP BY role").fetchall()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from lakehouse.engine.lake import Lake
from lakehouse.settings import Settings

__version__ = "0.1.0"
__all__ = ["Lake", "open", "attach", "__version__"]


def open(root: str | os.PathLike[str], *, catalog: str | None = None, data_path: str | None = None,
         **settings: Any) -> Lake:
    """Create or open the lake at `root` (DuckLake over SQLite and local files unless told otherwise)."""
    return Lake(root, catalog=catalog, data_path=data_path, settings=Settings.load(Path(root), **settings))


def attach(con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str], *, catalog: str | None = None,
           data_path: str | None = None, **settings: Any) -> Lake:
    """Register the lake and every Lakehouse function on a caller's own DuckDB connection."""
    return Lake(root, catalog=catalog, data_path=data_path, connection=con,
                settings=Settings.load(Path(root), **settings))

"""What a crash or a killed process leaves on disk, removed when a lake opens.

- staging files of uploads that never finished (`<root>/staging/`),
- index sidecars no index generation names any more, and half-written `.tmp` sidecars (`<root>/indexes/`),
- data files DuckLake's catalog does not know (a write killed before its commit), through DuckLake's own
  `ducklake_delete_orphaned_files`.

Only what is older than `STALE_S` goes: a younger file may belong to another process's ingest or build in flight.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.vectors import store
from lakehouse.errors import map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

log = logging.getLogger(__name__)

STALE_S = 3600.0


def tidy(ctx: EngineContext, now: float | None = None) -> dict[str, Any]:
    """Remove what is stale; returns what was removed, by kind."""
    cutoff = (time.time() if now is None else now) - STALE_S
    out: dict[str, Any] = {"staging": _old_files(ctx.root / "staging", "*", cutoff)}
    with ctx.fresh_cursor() as cur, map_duckdb_errors():
        rows = cur.execute("SELECT corpus, generation, path FROM lake.lh.index_generations").fetchall()
        # the files generations name, and this node's copies of generations other nodes built (vectors/engine.py)
        known = {Path(path) for _, _, path in rows}
        known |= {store.sidecar_path(ctx.root, corpus, generation) for corpus, generation, _ in rows}
        out["sidecars"] = [str(p) for p in _stale_sidecars(ctx.root / "indexes", known, cutoff)]
        out["data_files"] = _orphaned_data_files(cur, cutoff) if ctx.location.is_local_data else []
    for kind, gone in out.items():
        if gone:
            log.info("removed %d stale %s left by an earlier crash", len(gone), kind.replace("_", " "))
    return out


def _old_files(folder: Path, pattern: str, cutoff: float) -> list[str]:
    gone = []
    for path in folder.glob(pattern) if folder.is_dir() else ():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            gone.append(path.name)
    return gone


def _stale_sidecars(folder: Path, known: set[Path], cutoff: float) -> list[Path]:
    gone = []
    for path in folder.glob("*/*") if folder.is_dir() else ():
        # a sidecar no generation names, with the checksum of this node's copy of it (hnsw.save_local_copy)
        stale = path.suffix == ".tmp" or (path.suffix in (".usearch", ".sha256") and path.with_suffix(".usearch") not in known)
        if stale and path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def _orphaned_data_files(cur: duckdb.DuckDBPyConnection, cutoff: float) -> list[str]:
    rows = cur.execute("SELECT * FROM ducklake_delete_orphaned_files('lake', older_than => to_timestamp(?))",
                       [cutoff]).fetchall()
    return [str(r[0]) for r in rows]

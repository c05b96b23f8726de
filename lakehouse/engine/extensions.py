"""Load DuckDB extensions offline from their pip packages, with DuckDB's INSTALL as fallback."""

from __future__ import annotations

import logging
import threading

import duckdb

from lakehouse.errors import ExtensionMissing

log = logging.getLogger(__name__)
_installed: set[str] = set()
_lock = threading.Lock()


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Make extension `name` usable on `con`: pip package first, then `INSTALL`, else a clear error."""
    try:
        con.execute(f"LOAD {name}")
        return
    except duckdb.Error:
        pass
    with _lock:
        try:
            import duckdb_extensions

            duckdb_extensions.import_extension(name, con=con)
        except Exception as exc:  # missing package or extension: try DuckDB's own repository
            log.debug("pip package for %s unavailable (%s); trying INSTALL", name, exc)
            try:
                con.execute(f"INSTALL {name}")
            except duckdb.Error as exc2:
                raise ExtensionMissing(
                    f"DuckDB extension {name!r} is not available offline; "
                    f"pip install 'duckdb-extensions==1.5.5' 'duckdb-extension-{name}==1.5.5'",
                    extension=name,
                ) from exc2
        _installed.add(name)
    con.execute(f"LOAD {name}")

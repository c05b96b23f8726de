"""Core functions: `SELECT lakehouse_version()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


def register(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    from lakehouse import __version__

    con.create_function("lakehouse_version", lambda: __version__, [], "VARCHAR", side_effects=False)

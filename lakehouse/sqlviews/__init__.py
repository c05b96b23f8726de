"""Macros and views over the UDFs, as .sql files executed in name order (numeric prefixes)."""

from __future__ import annotations

import logging
from importlib import resources

import duckdb

log = logging.getLogger(__name__)


def sql_files() -> list[tuple[str, str]]:
    files = [f for f in resources.files(__name__).iterdir() if f.name.endswith(".sql")]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


def load_all(con: duckdb.DuckDBPyConnection, macro_db: str | None, values: dict[str, str] | None = None, *,
             skip_missing: bool = False) -> None:
    """Run every file with `macro_db` as the default database, so macros land where cursors see them.

    With `macro_db=None` the macros are created TEMP on this connection instead: the temp catalog is
    searched before the lake's schema, so a read-write cursor (lake first on its path, where `CREATE
    TABLE x` must land) finds `vector_search` without a DuckLake catalog lookup (~5 ms).
    `${name}` in a file is replaced from `values` (types that depend on settings, e.g. the embedding width).
    With `skip_missing` (an instance pinned to an old snapshot), a macro over an engine table that did not exist
    yet at that snapshot is left out instead of failing the rest.
    """
    if macro_db is not None:
        con.execute(f'USE "{macro_db}"')
    for _name, text in sql_files():
        for key, value in (values or {}).items():
            text = text.replace("${" + key + "}", value)
        if macro_db is None:
            text = text.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO")
        if not skip_missing:
            con.execute(text)
            continue
        for statement in con.extract_statements(text):
            try:
                con.execute(statement)
            except duckdb.CatalogException:
                log.debug("macro left out at this snapshot: %s", statement.query[:80])

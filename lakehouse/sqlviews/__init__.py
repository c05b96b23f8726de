"""Macros and views over the UDFs, as .sql files executed in name order (numeric prefixes)."""

from __future__ import annotations

from importlib import resources

import duckdb


def sql_files() -> list[tuple[str, str]]:
    files = [f for f in resources.files(__name__).iterdir() if f.name.endswith(".sql")]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


def load_all(con: duckdb.DuckDBPyConnection, macro_db: str, values: dict[str, str] | None = None) -> None:
    """Run every file with `macro_db` as the default database, so macros land where cursors see them.

    `${name}` in a file is replaced from `values` (types that depend on settings, e.g. the embedding width).
    """
    con.execute(f'USE "{macro_db}"')
    for _name, text in sql_files():
        for key, value in (values or {}).items():
            text = text.replace("${" + key + "}", value)
        con.execute(text)

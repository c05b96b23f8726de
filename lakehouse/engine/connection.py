"""The one door every DuckDB connection passes through (datasette's `_prepare_connection`).

`prepare_connection(con, lake)` applies settings, loads extensions, attaches the lake as
`lake`, registers the UDF families (`lakehouse.udfs`) and loads `lakehouse/sqlviews/*.sql` in
name order. Macros are created non-temporary in the connection's own database so that
cursors see them; `prepare_cursor` gives a cursor the same `USE lake` + search path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lakehouse import sqlviews, udfs
from lakehouse.engine.catalog import ensure_engine_tables
from lakehouse.engine.extensions import load_extension
from lakehouse.engine.names import sql_string
from lakehouse.errors import InvalidInput, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

LAKE_ALIAS = "lake"


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a lake lives: its root folder, DuckLake catalog and data path."""

    root: Path
    catalog: str  # "sqlite:<file>", "postgres:<libpq conninfo>" or "duckdb:<file>"
    data_path: str
    data_path_explicit: bool

    @classmethod
    def resolve(cls, root: str | Path, catalog: str | None, data_path: str | None) -> Location:
        root = Path(root).expanduser().resolve()
        if catalog is None:
            catalog = f"sqlite:{root / 'catalog.sqlite'}"
        kind = catalog.split(":", 1)[0]
        if kind not in ("sqlite", "postgres", "duckdb") or ":" not in catalog:
            raise InvalidInput(
                f"unsupported catalog {catalog!r}: use 'sqlite:<file>', 'postgres:<conninfo>' or 'duckdb:<file>'",
                code="invalid_catalog",
            )
        explicit = data_path is not None
        if data_path is None:
            data_path = str(root / "data") + "/"
        elif "://" not in data_path:
            data_path = str(Path(data_path).expanduser().resolve()) + "/"
        return cls(root, catalog, data_path, explicit)

    @property
    def kind(self) -> str:
        return self.catalog.split(":", 1)[0]

    @property
    def is_local_data(self) -> bool:
        return "://" not in self.data_path

    def catalog_exists(self) -> bool | None:
        """True/False for file catalogs; None when only the server knows (PostgreSQL)."""
        if self.kind == "postgres":
            return None
        return Path(self.catalog.split(":", 1)[1]).exists()


def attach_lake(con: duckdb.DuckDBPyConnection, loc: Location, *, read_only: bool) -> None:
    load_extension(con, "ducklake")
    if loc.kind in ("sqlite", "postgres"):
        load_extension(con, loc.kind)
    if not loc.is_local_data:
        load_extension(con, "httpfs")
    new_catalog = loc.catalog_exists() is False
    options = []
    if loc.kind == "sqlite":
        # WAL: readers (other processes, our read-only instance) don't block commits; the busy
        # timeout makes concurrent committers wait for the SQLite write lock instead of failing.
        options += ["META_JOURNAL_MODE 'WAL'", "META_BUSY_TIMEOUT 10000"]
    # An existing catalog remembers its data path; passing a different one is an error.
    if loc.data_path_explicit or new_catalog:
        options.append(f"DATA_PATH {sql_string(loc.data_path)}")
        if loc.is_local_data:
            Path(loc.data_path).mkdir(parents=True, exist_ok=True)
    if read_only:
        options.append("READ_ONLY")
    opts = f" ({', '.join(options)})" if options else ""
    with map_duckdb_errors():
        con.execute(f"ATTACH {sql_string('ducklake:' + loc.catalog)} AS {LAKE_ALIAS}{opts}")


def prepare_connection(
    con: duckdb.DuckDBPyConnection, lake: Lake, *, read_only: bool = False, attach: bool = True
) -> str:
    """Settings, extensions, the lake, UDFs, macros. Returns the database holding the macros."""
    s = lake.settings
    with map_duckdb_errors():
        if s.threads:
            con.execute(f"SET threads = {int(s.threads)}")
        if s.memory_limit:
            con.execute(f"SET memory_limit = {sql_string(s.memory_limit)}")
        macro_db = con.execute("SELECT current_database()").fetchone()[0]
        if attach:
            attach_lake(con, lake.location, read_only=read_only)
        if not read_only:
            ensure_engine_tables(con)
        udfs.register_all(con, lake)
        sqlviews.load_all(con, macro_db, macro_values(lake))
    prepare_cursor(con, macro_db, temp_macros=None if read_only else macro_values(lake))
    return macro_db


def macro_values(lake: Lake) -> dict[str, str]:
    """The `${name}` values of the sqlviews files for this lake's settings."""
    return {"embed_type": embed_type(lake.settings.embedder)}


def embed_type(spec: str) -> str:
    """`FLOAT[384]` when the default embedder's width is known without a model call, else `FLOAT[]`."""
    from lakehouse.engine.embedders import get_embedder

    if spec.split("/", 1)[0].split(":", 1)[0] in ("minilm", "hash"):
        return f"FLOAT[{get_embedder(spec).dim}]"
    return "FLOAT[]"


def prepare_cursor(cur: duckdb.DuckDBPyConnection, macro_db: str, *, macros_first: bool = False,
                   temp_macros: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    """Cursors don't inherit USE / search_path: give them the lake's.

    Resolving any name through the lake's schema starts a DuckLake transaction (catalog reads in
    SQLite, ~4-5 ms), even a built-in function's such as `list` or `+`. Read-only cursors look in the
    macro database, then DuckDB's built-ins, then the lake, so a query that reads no lake table (a
    `vector_search` filtered by a temp table's ids) never touches the catalog. Read-write cursors keep
    the lake first, because the first schema on the path is where `CREATE TABLE x` lands, and get the
    macros as TEMP copies (`temp_macros`: the sqlviews values), which are found before it.
    """
    cur.execute(f"USE {LAKE_ALIAS}")
    if macros_first:
        path = [f"{macro_db}.main", "system.main", f"{LAKE_ALIAS}.main"]
    else:
        path = [f"{LAKE_ALIAS}.main", f"{macro_db}.main"]
    cur.execute(f"SET search_path = {sql_string(','.join(path))}")
    if temp_macros is not None:
        sqlviews.load_all(cur, None, temp_macros)
    return cur


def sandbox(con: duckdb.DuckDBPyConnection, loc: Location) -> None:
    """DuckDB's own sandbox for the read-only query instance: no files outside the lake, locked."""
    allowed = [str(loc.root) + "/"]
    if loc.is_local_data and not loc.data_path.startswith(allowed[0]):
        allowed.append(loc.data_path)
    if loc.kind in ("sqlite", "duckdb"):
        parent = str(Path(loc.catalog.split(":", 1)[1]).parent) + "/"
        if parent not in allowed:
            allowed.append(parent)
    listing = ", ".join(sql_string(a) for a in allowed)
    con.execute(f"SET allowed_directories = [{listing}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")

"""The one door every DuckDB connection passes through (datasette's `_prepare_connection`).

`prepare_connection(con, lake)` applies settings, loads extensions, attaches the lake as
`lake`, registers the UDF families (`lakehouse.udfs`) and loads `lakehouse/sqlviews/*.sql` in
name order. Macros are created non-temporary in the connection's own database so that
cursors see them; `prepare_cursor` gives a cursor the same `USE lake` + search path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

from lakehouse import sqlviews, udfs
from lakehouse.engine.buckets import Buckets
from lakehouse.engine.catalog import ensure_engine_tables, in_transaction
from lakehouse.engine.embedders import get_embedder
from lakehouse.engine.extensions import load_extension
from lakehouse.engine.names import sql_string
from lakehouse.engine.observer import journal, ops
from lakehouse.engine.read_path import ReadMirror
from lakehouse.engine.s3 import S3Config
from lakehouse.engine.sql_scope import LakeNames
from lakehouse.engine.time_travel import SnapshotInstances
from lakehouse.errors import InvalidInput, LakehouseError, map_duckdb_errors
from lakehouse.scrub import SCRUB

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

LAKE_ALIAS = "lake"
# The folders the observer's views read (sqlviews/40_observer.sql): the only ones besides the lake's data
# that the sandboxed instance may open (through those views: its allow list refuses file functions).
VIEW_FOLDERS = ("observer", "_errors")
log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a lake lives: its root folder, DuckLake catalog and data path."""

    root: Path
    catalog: str  # "sqlite:<file>", "postgres:<libpq conninfo>" or "duckdb:<file>"
    data_path: str
    data_path_explicit: bool
    buckets: Buckets = Buckets({})  # named storage locations (the primary is `data_path`)
    s3: S3Config | None = None  # credentials and endpoint for s3:// paths (None: DuckDB's own secrets)

    @classmethod
    def resolve(cls, root: str | Path, catalog: str | None, data_path: str | None) -> Location:
        root = Path(root).expanduser().resolve()
        if catalog is None:
            catalog = f"sqlite:{root / 'catalog.sqlite'}"
        kind = catalog.split(":", 1)[0]
        if kind == "postgres":  # a libpq password may be echoed by a failing ATTACH: never shown
            for word in catalog.split():
                if word.startswith("password="):
                    SCRUB.add(word.split("=", 1)[1].strip("'"))
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


def attach_lake(con: duckdb.DuckDBPyConnection, loc: Location, *, read_only: bool,
                snapshot: int | None = None) -> None:
    """Attach the lake as `lake`; with `snapshot`, read-only and pinned to that DuckLake snapshot (time travel)."""
    load_extension(con, "ducklake")
    if loc.kind in ("sqlite", "postgres"):
        load_extension(con, loc.kind)
    if not loc.is_local_data or any("://" in p for p in loc.buckets.paths()):
        load_extension(con, "httpfs")
        if loc.s3 is not None:
            with map_duckdb_errors():
                con.execute(loc.s3.create_secret_sql())
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
        # The metadata catalog under a name no caller can guess (DuckLake's default is
        # __ducklake_metadata_<alias>): the allow list refuses other catalogs, this is the second lock.
        options += ["READ_ONLY", f"METADATA_CATALOG {sql_string('__lh_meta_' + secrets.token_hex(8))}"]
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    opts = f" ({', '.join(options)})" if options else ""
    with map_duckdb_errors():
        con.execute(f"ATTACH {sql_string('ducklake:' + loc.catalog)} AS {LAKE_ALIAS}{opts}")


def prepare_connection(
    con: duckdb.DuckDBPyConnection, lake: Lake, *, read_only: bool = False, attach: bool = True,
    snapshot: int | None = None,
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
            attach_lake(con, lake.location, read_only=read_only, snapshot=snapshot)
        if not read_only:
            ensure_engine_tables(con)
        udfs.register_all(con, lake, read_only=read_only)
        sqlviews.load_all(con, macro_db, macro_values(lake), skip_missing=snapshot is not None)
    prepare_cursor(con, macro_db, temp_macros=None if read_only else macro_values(lake))
    return macro_db


def macro_values(lake: Lake) -> dict[str, str]:
    """The `${name}` values of the sqlviews files for this lake's settings and folders."""
    def columns(cols: tuple[tuple[str, str], ...]) -> str:
        # struct_pack qualified like every function in a macro body (sqlviews/10_vectors.sql says why)
        return "system.main.struct_pack(" + ", ".join(f"{name} := {sql_string(kind)}" for name, kind in cols) + ")"

    return {"embed_type": embed_type(lake.settings.embedder),
            "observer_glob": sql_string(str(lake.root / VIEW_FOLDERS[0] / "ops-*.jsonl")),
            "observer_columns": columns(ops.COLUMNS),
            "journal_glob": sql_string(str(lake.root / VIEW_FOLDERS[1] / "storage-*.jsonl")),
            "journal_columns": columns(journal.COLUMNS)}


def embed_type(spec: str) -> str:
    """`FLOAT[384]` when the default embedder's width is known without a model call, else `FLOAT[]`."""
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


def settle(cur: duckdb.DuckDBPyConnection) -> None:
    """End whatever a half-read result left open on `cur`.

    A relation fetched only in part (`lake.sql(...).fetchone()`) keeps its query, and so its transaction,
    active on the cursor; a relation made afterwards binds inside that old transaction and cannot see tables
    committed since ("Table with name b does not exist"). Running a statement ends the pending one
    (~0.4 ms); relations already returned keep the rows they fetched and can still be read to the end.
    """
    cur.execute("SELECT 1")


def sandbox(con: duckdb.DuckDBPyConnection, loc: Location, temp_dir: str) -> None:
    """DuckDB's own sandbox for the read-only query instance, set once and locked.

    Files: only the lake's data (Parquet), the observer's folders (VIEW_FOLDERS) and a private spill
    folder `temp_dir` (DuckDB adds its temp directory to the allowed ones itself). Not the rest of the
    root: staging uploads, index sidecars, lakehouse.toml. DuckDB also adds the files of attached
    databases (the catalog) when external access goes off; only the allow list keeps those from its
    file functions. With external access off, Python variables are not tables (no replacement scans);
    no extension is installed or loaded; no setting changes.
    """
    # The data path, local or s3:// (DuckDB's allow list takes URL prefixes too: with external access off, a remote
    # file outside it is refused like a local one), and the buckets (rescued files).
    allowed = [loc.data_path] + [str(loc.root / folder) + "/" for folder in VIEW_FOLDERS]
    allowed += [p for p in loc.buckets.paths() if p not in allowed]
    listing = ", ".join(sql_string(a) for a in allowed)
    for statement in (f"SET temp_directory = {sql_string(temp_dir)}",
                      f"SET allowed_directories = [{listing}]",
                      "SET autoinstall_known_extensions = false",
                      "SET autoload_known_extensions = false",
                      "SET enable_external_access = false",
                      "SET lock_configuration = true"):
        con.execute(statement)


@dataclasses.dataclass
class SandboxInstance:
    """A sandboxed read-only DuckDB instance onto the lake (at its latest snapshot, or pinned to one)."""

    con: duckdb.DuckDBPyConnection
    macro_db: str
    temp_dir: str
    _spare: list[duckdb.DuckDBPyConnection] = dataclasses.field(default_factory=list)  # borrowed()'s, not in use
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return prepare_cursor(self.con.cursor(), self.macro_db, macros_first=True)

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor no one else is using, returned to the instance's pool after: opening one costs ~4 ms (`USE lake`
        reads the DuckLake catalog), paid once per pooled cursor instead of once per read."""
        with self._lock:
            cur = self._spare.pop() if self._spare else None
        if cur is None:
            cur = self.cursor()
        try:
            yield cur
        finally:
            with self._lock:
                self._spare.append(cur)

    def close(self) -> None:
        with self._lock:  # a cursor keeps its database open: the pool's go first
            for cur in self._spare:
                cur.close()
            self._spare.clear()
        self.con.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def open_sandbox(lake: Lake, snapshot: int | None = None) -> SandboxInstance:
    """A new read-only instance: the lake attached READ_ONLY (pinned to `snapshot` if given), then sandboxed."""
    con = duckdb.connect()
    temp = tempfile.mkdtemp(prefix="lakehouse-query-")
    try:
        macro_db = prepare_connection(con, lake, read_only=True, snapshot=snapshot)
        with map_duckdb_errors():
            sandbox(con, lake.location, temp)
    except BaseException:
        con.close()
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return SandboxInstance(con, macro_db, temp)


class Connections:
    """The lake's two DuckDB instances: read-write (a cursor per thread, plus fresh cursors for engine code)
    and the sandboxed read-only one behind user SQL, created on first use."""

    def __init__(self, lake: Lake, connection: duckdb.DuckDBPyConnection | None) -> None:
        self._lake = lake
        self.location = lake.location
        self.owns_connection = connection is None
        self.db = connection if connection is not None else duckdb.connect()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursor_lock = threading.Lock()
        self._ro: SandboxInstance | None = None
        self.snapshots = SnapshotInstances(functools.partial(open_sandbox, lake), self._snapshot_exists)
        self._mirror: ReadMirror | None = None
        self.lake_names = LakeNames()  # what a profile's SQL is checked against (sql_scope)
        self.write_lock = threading.RLock()  # one DuckLake writer per process; commits would conflict
        self.commit_lock = threading.Lock()  # a COMMIT, or a read of the SQLite catalog file (snapshots.CatalogWatch)
        self.closed = False
        try:
            self.macro_db = prepare_connection(self.db, lake)
        except BaseException:
            if self.owns_connection:
                self.db.close()
            raise

    def check_open(self) -> None:
        if self.closed:
            raise LakehouseError("this lake is closed", code="closed")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read-write cursor, caught up with every commit made before the call (see `settle`)."""
        cur = getattr(self._local, "rw", None)
        if cur is None:
            self.check_open()
            cur = prepare_cursor(self.db.cursor(), self.macro_db, temp_macros=macro_values(self._lake))
            self._local.rw = cur
            with self._cursor_lock:
                self._cursors.append(cur)
        else:
            settle(cur)
        return cur

    def query_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the sandboxed read-only instance, its views of the lake at the latest snapshot."""
        cur = getattr(self._local, "ro", None)
        if cur is not None:
            if self._mirror is not None:
                self._mirror.sync(self._ro.con)
            return cur
        self.check_open()
        with self._cursor_lock:
            if self._ro is None:
                self._ro = open_sandbox(self._lake)
                watch = self._lake.ctx.clock.watch
                if self._lake.settings.fast_reads and watch.available:
                    self._mirror = ReadMirror(watch, self._ro.macro_db)
            cur = self._ro.cursor()
            self._cursors.append(cur)
        self._local.ro = cur
        if self._mirror is not None:
            self._mirror.sync(self._ro.con)
        return cur

    @contextlib.contextmanager
    def nested_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor no one else is using on the sandboxed instance (pooled): for reads made by an engine SQL function,
        whose calling query may be running on this thread's query cursor (re-entering it deadlocks)."""
        self.query_cursor()  # the instance, and its views synced
        assert self._ro is not None
        with self._ro.borrowed() as cur:
            yield cur

    @contextlib.contextmanager
    def snapshot_cursor(self, snapshot: int) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on a sandboxed read-only instance that sees the lake as of DuckLake snapshot `snapshot`."""
        self.check_open()
        with self.snapshots.cursor(snapshot) as cur:
            yield cur

    @contextlib.contextmanager
    def fresh_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.check_open()
        cur = prepare_cursor(self.db.cursor(), self.macro_db)
        try:
            yield cur
        finally:
            cur.close()

    def _snapshot_exists(self, snapshot: int) -> bool:
        with self.fresh_cursor() as cur, map_duckdb_errors():
            return cur.execute(f"SELECT count(*) FROM ducklake_snapshots({sql_string(LAKE_ALIAS)}) WHERE snapshot_id = ?",
                               [snapshot]).fetchone()[0] > 0

    def transaction(self, cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        return in_transaction(cur, body, lock=self.write_lock, commit_lock=self.commit_lock)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._cursor_lock:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()
        if self._ro is not None:
            self._ro.close()
        self.snapshots.close()
        if self.owns_connection:
            self.db.close()
        else:
            try:
                self.db.execute(f'USE "{self.macro_db}"')
                self.db.execute(f"DETACH {LAKE_ALIAS}")
            except duckdb.Error:
                log.debug("could not detach the lake from the caller's connection", exc_info=True)

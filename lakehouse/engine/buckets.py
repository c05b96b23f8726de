"""Buckets: named storage locations of a lake, one primary, and a rescue bucket for when the primary fails.

    # lakehouse.toml
    [buckets.main]
    path = "/data/lake"            # a local directory, or s3://bucket/prefix/ (DuckDB's httpfs)
    primary = true                 # the lake's DATA_PATH: where DuckLake writes every table
    [buckets.rescue]
    path = "/mnt/spare/lake-rescue"
    rescue = true                  # where an ingest writes when the primary cannot be written

DuckLake (1.5.5) has one data path per lake: schemas and tables get a path under it, and no SQL sets another
(`set_option` knows no `data_path`; there is no `ALTER ... SET DATA_PATH`). What it does have is
`ducklake_add_data_files`, which registers Parquet files anywhere as part of a table, in the caller's
transaction. The rescue path uses it: when DuckLake cannot write an ingest's files to the primary (read-only,
full, unreachable), the same rows are written as Parquet to `<rescue>/<schema>/<table>/` and added to the table
in the ingest's transaction, so the dataset stays whole and queryable. `drain` moves them back: per rescued file,
one transaction re-inserts its rows through DuckLake (new files under the primary) and deletes them by
`filename`, so no row is lost or doubled; the rescued file itself stays for time travel to the snapshots that
still name it, until DuckLake's own maintenance (`ducklake_expire_snapshots`, `ducklake_cleanup_old_files`)
removes it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine import catalog, journal
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.errors import SettingsError, StorageError, from_duckdb

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KEYS = {"path": str, "primary": bool, "rescue": bool}
_FAILED_PATH = re.compile(r'"([^"]+)"')  # DuckDB quotes the file or directory it could not write
_META = "__ducklake_metadata_lake"


@dataclasses.dataclass(frozen=True)
class Bucket:
    name: str
    path: str  # ends with "/"; absolute for local directories
    primary: bool = False
    rescue: bool = False

    @property
    def local(self) -> bool:
        return "://" not in self.path

    def holds(self, path: str) -> bool:
        return path.startswith(self.path)


@dataclasses.dataclass(frozen=True)
class Buckets:
    named: dict[str, Bucket]

    @property
    def primary(self) -> Bucket | None:
        return next((b for b in self.named.values() if b.primary), None)

    @property
    def rescue(self) -> Bucket | None:
        return next((b for b in self.named.values() if b.rescue), None)

    def paths(self) -> list[str]:
        return [b.path for b in self.named.values()]


def parse(raw: dict[str, Any], root: Path) -> Buckets:
    """The `buckets` setting, checked: SettingsError naming the key (`buckets.NAME.path`) for anything wrong."""
    named: dict[str, Bucket] = {}
    for name, spec in raw.items():
        where = f"buckets.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise SettingsError(f"bucket name {name!r} must be lower-case letters, digits and _", setting=where)
        if not isinstance(spec, dict):
            raise SettingsError(f"setting {where!r} must be a table with path (and primary or rescue)", setting=where)
        for key, value in spec.items():
            if key not in _KEYS:
                raise SettingsError(f"unknown key {f'{where}.{key}'!r}; known: {', '.join(_KEYS)}",
                                    setting=f"{where}.{key}")
            if not isinstance(value, _KEYS[key]):
                raise SettingsError(f"setting {f'{where}.{key}'!r} must be {_KEYS[key].__name__}, got {value!r}",
                                    setting=f"{where}.{key}")
        if "path" not in spec or not spec["path"].strip():
            raise SettingsError(f"bucket {name!r} needs a path ({where}.path)", setting=f"{where}.path")
        if spec.get("primary") and spec.get("rescue"):
            raise SettingsError(f"bucket {name!r} cannot be both primary and rescue", setting=where)
        named[name] = Bucket(name, _path(spec["path"], root, f"{where}.path"), bool(spec.get("primary")),
                             bool(spec.get("rescue")))
    for role in ("primary", "rescue"):
        chosen = [b.name for b in named.values() if getattr(b, role)]
        if len(chosen) > 1:
            raise SettingsError(f"buckets {', '.join(chosen)} are all {role}: one bucket may be {role}",
                                setting=f"buckets.{chosen[1]}.{role}")
    out = Buckets(named)
    if out.primary and out.rescue and (out.rescue.holds(out.primary.path) or out.primary.holds(out.rescue.path)):
        raise SettingsError(f"the rescue bucket {out.rescue.name!r} must not share a path with the primary",
                            setting=f"buckets.{out.rescue.name}.path")
    return out


def _path(text: str, root: Path, where: str) -> str:
    text = text.strip()
    if "://" in text:
        if not text.startswith("s3://"):
            raise SettingsError(f"setting {where!r}: {text!r} is neither a local directory nor s3://bucket/prefix",
                                setting=where)
        return text.rstrip("/") + "/"
    path = Path(text).expanduser()
    return str((path if path.is_absolute() else root / path).resolve()) + "/"


# -- writing an ingest's rows ------------------------------------------------------------------------
class Sink:
    """Where an ingest's table writes go: DuckLake's own (the primary, `DIRECT`), or Parquet files in a bucket
    added to the table (`InBucket`). Each method returns the rows written."""

    def create_as(self, cur: duckdb.DuckDBPyConnection, table: str, select: str, *, replace: bool = False) -> int:
        create = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        return cur.execute(f"{create} {table} AS {select}").fetchone()[0]

    def insert(self, cur: duckdb.DuckDBPyConnection, table: str, select: str) -> int:
        return cur.execute(f"INSERT INTO {table} BY NAME {select}").fetchone()[0]

    def create_empty(self, cur: duckdb.DuckDBPyConnection, table: str, select: str, *, replace: bool = False) -> None:
        """A table of `select`'s columns and no rows. Named columns rather than `AS ... LIMIT 0`: DuckLake creates
        the table's folder in the data path for a CREATE TABLE AS, even of no rows."""
        columns = ", ".join(f"{quote_ident(r[0])} {r[1]}" for r in cur.execute(f"DESCRIBE {select}").fetchall())
        cur.execute(f"{'CREATE OR REPLACE TABLE' if replace else 'CREATE TABLE'} {table} ({columns})")


DIRECT = Sink()


class InBucket(Sink):
    """Rows written as Parquet under `<bucket>/<schema>/<table>/` and registered with `ducklake_add_data_files`
    in the caller's transaction (a rolled-back transaction leaves an orphan file, removed by `discard`)."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.files: list[str] = []

    def create_as(self, cur: duckdb.DuckDBPyConnection, table: str, select: str, *, replace: bool = False) -> int:
        self.create_empty(cur, table, select, replace=replace)
        return self.insert(cur, table, select)

    def insert(self, cur: duckdb.DuckDBPyConnection, table: str, select: str) -> int:
        _, schema, name = table.split(".")
        folder = f"{self.bucket.path}{schema}/{name}/"
        if self.bucket.local:
            Path(folder).mkdir(parents=True, exist_ok=True)
        path = f"{folder}lh-rescued-{uuid.uuid4().hex}.parquet"
        rows = cur.execute(f"COPY ({select}) TO {sql_string(path)} (FORMAT parquet)").fetchone()[0]
        self.files.append(path)
        if rows:
            cur.execute("CALL ducklake_add_data_files('lake', ?, ?, schema => ?, allow_missing => true)",
                        [name, path, schema])
        return rows

    def discard(self) -> None:
        """The files of attempts that did not commit."""
        for path in self.files:
            if self.bucket.local:
                Path(path).unlink(missing_ok=True)
        self.files.clear()


def primary_failure(exc: BaseException, primary: str) -> str | None:
    """Why `exc` means the primary bucket cannot be written (None when it is something else): DuckDB failed to
    write a file under the primary path, and (for a local primary) that file's folder is not writable now."""
    if not isinstance(exc, duckdb.IOException):
        return None
    text = str(exc)
    for path in _FAILED_PATH.findall(text):
        if not path.startswith(primary) and not os.path.abspath(path).startswith(primary):
            continue
        if "://" in primary:
            return text.strip().splitlines()[0][:300]
        folder = Path(os.path.abspath(path)).parent
        problem = _unwritable(folder)
        if problem is not None:
            return problem
    return None


def _unwritable(folder: Path) -> str | None:
    """Why a file cannot be created in `folder` (its nearest existing ancestor, when it does not exist yet)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    target = probe / f".lh-probe-{uuid.uuid4().hex}"
    try:
        if not probe.is_dir():
            return f"{probe} is not a directory"
        target.write_bytes(b"")
        target.unlink()
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    return None


# -- moving rescued rows back --------------------------------------------------------------------------
def rescued_files(cur: duckdb.DuckDBPyConnection, rescue: Bucket) -> list[dict[str, Any]]:
    """The live data files of the lake stored in the rescue bucket, with their table and rows."""
    rows = cur.execute(
        f"SELECT f.path, s.schema_name, t.table_name, f.record_count FROM {_META}.ducklake_data_file f "
        f"JOIN {_META}.ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL "
        f"JOIN {_META}.ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL "
        "WHERE f.end_snapshot IS NULL AND NOT f.path_is_relative AND starts_with(f.path, ?) ORDER BY f.data_file_id",
        [rescue.path]).fetchall()
    return [{"file": p, "schema": s, "table": t, "rows": n} for p, s, t, n in rows]


def drain(ctx: EngineContext, buckets: Buckets) -> dict[str, Any]:
    """Move every rescued file's rows back into the primary, one transaction per file."""
    rescue = buckets.rescue
    if rescue is None:
        return {"files": 0, "rows": 0, "remaining": 0, "moved": []}
    moved: list[dict[str, Any]] = []
    with ctx.write_lock, ctx.fresh_cursor() as cur:
        try:
            files = rescued_files(cur, rescue)
        except duckdb.Error as exc:
            raise from_duckdb(exc) from exc
        for f in files:
            table = f"lake.{quote_ident(f['schema'])}.{quote_ident(f['table'])}"
            dataset = f["table"].split("__")[0] if f["schema"] == "lh_store" else f["table"]

            def move(cur: duckdb.DuckDBPyConnection, f: dict[str, Any] = f, table: str = table,
                     dataset: str = dataset) -> int:
                n = cur.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE filename = ?",
                                [f["file"]]).fetchone()[0]
                gone = cur.execute(f"DELETE FROM {table} WHERE filename = ?", [f["file"]]).fetchone()[0]
                if gone != n:  # never: both read the same file in one transaction
                    raise StorageError(f"draining {f['file']}: inserted {n} rows, deleted {gone}", code="drain_failed")
                journal.note(dataset=dataset, moved=n, file=f["file"], table=f"{f['schema']}.{f['table']}")
                return n

            try:
                n = catalog.in_transaction(cur, move)
            except duckdb.Error as exc:
                err = from_duckdb(exc)
                raise StorageError(f"could not move {f['file']} back to the primary bucket ({len(moved)} of "
                                   f"{len(files)} files moved): {err.message.splitlines()[0]}",
                                   code="drain_failed") from exc
            moved.append({"dataset": dataset, "file": f["file"], "rows": n})
        remaining = len(rescued_files(cur, rescue))
    return {"files": len(moved), "rows": sum(m["rows"] for m in moved), "remaining": remaining, "moved": moved}

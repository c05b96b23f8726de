"""The first wall alone: DuckDB's sandbox on the read-only instance, tried on its cursor with no allow list
in front. What it stops, it stops whatever the SQL; what it cannot stop (the catalog file, writes inside
the data folder, CHECKPOINT's Parquet files) is shown here too, with the allow list refusing it
(and on every surface: test_sql_surfaces)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from secured_lake import Target

import lakehouse
from lakehouse.engine.connection import VIEW_FOLDERS
from lakehouse.engine.safe_sql import sandbox_errors
from lakehouse.errors import Forbidden, StorageError, Unprocessable


@pytest.mark.parametrize("place", ["staged", "sidecar", "toml"])
@pytest.mark.parametrize("reader", ["read_blob", "read_text"])
def test_files_under_the_root_but_outside_data_are_unreadable(target: Target, place: str, reader: str) -> None:
    cur = target.lake.query_cursor()
    with pytest.raises(duckdb.PermissionException):
        cur.execute(f"SELECT * FROM {reader}('{target.places[place]}')").fetchall()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('{root}/**')",
    "SELECT * FROM glob('{root}/staging/*')",
    "SELECT * FROM read_csv('{root}/staging/upload.csv')",
    "SELECT * FROM '{root}/staging/upload.csv'",
    "ATTACH '{root}/other.db' AS other",
    "INSTALL httpfs",
    "LOAD fts",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
    "CREATE TABLE lake.main.evil AS SELECT 1",
    "INSERT INTO lake.main.workers VALUES (9, 'x', 'y', 'z')",
    "SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())",
    "CALL ducklake_set_option('lake', 'data_inlining_row_limit', 10)",
    "SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot",
])
def test_the_sandbox_refuses_by_itself(target: Target, sql: str) -> None:
    before = target.state()
    with pytest.raises(duckdb.Error):
        target.lake.query_cursor().execute(target.fill(sql)).fetchall()
    assert target.state() == before
    target.healthy()


def test_what_the_sandbox_reads(target: Target) -> None:
    """The lake's data, the observer's views, a private spill folder: nothing else of the root."""
    cur = target.lake.query_cursor()
    allowed = set(cur.execute("SELECT unnest(current_setting('allowed_directories'))").fetchall())
    temp = cur.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    root = target.root
    assert {a for (a,) in allowed} == {target.lake.location.data_path, str(Path(temp)) + "/",
                                       *(f"{root / f}/" for f in VIEW_FOLDERS)}
    assert Path(temp).name.startswith("lakehouse-query-") and not Path(temp).is_relative_to(root)
    assert cur.execute("SELECT count(*) FROM workers").fetchone() == (3,)
    cur.execute(f"SELECT count(*) FROM glob('{target.places['data']}**')").fetchall()  # allowed, if empty (inlined)
    settings = "SELECT current_setting('autoload_known_extensions'), current_setting('lock_configuration')"
    assert cur.execute(settings).fetchone() == (False, True)


def test_the_metadata_catalog_has_a_name_no_caller_knows(target: Target) -> None:
    names = {n for (n,) in target.lake.query_cursor().execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    hidden = [n for n in names if n.startswith("__")]
    assert len(hidden) == 1 and hidden[0] != "__ducklake_metadata_lake" and len(hidden[0]) > len("__lh_meta_") + 8
    rw = {n for (n,) in target.lake.sql("SELECT database_name FROM duckdb_databases()").fetchall()}
    assert hidden[0] not in rw


def test_python_variables_are_not_tables(target: Target) -> None:
    secret_rows = pa.table({"x": [1, 2, 3]})  # noqa: F841 - a replacement scan would find it by this name
    with pytest.raises(duckdb.CatalogException):
        target.lake.query_cursor().execute("SELECT * FROM secret_rows").fetchall()


def test_limits_of_duckdbs_sandbox_are_held_by_the_allow_list(tmp_path: Path) -> None:
    """Three things DuckDB's sandbox lets through, each refused by the allow list before DuckDB sees it:
    its file functions reach the catalog (attached databases' files join `allowed_paths` when external
    access goes off), `COPY ... TO` writes inside an allowed folder, and CHECKPOINT on a READ_ONLY lake
    writes Parquet files for inlined rows before failing on the catalog."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(b"id,name\n1,Ann\n", "small", filename="small.csv")
        data = Path(lake.location.data_path)
        catalog = lake.location.catalog.split(":", 1)[1]
        refused = [f"SELECT size FROM read_blob('{catalog}')", f"COPY (SELECT 1) TO '{data}/x.csv'",
                   "SELECT * FROM checkpoint('lake')", "CHECKPOINT lake"]
        before = sorted(data.rglob("*"))
        for sql in refused:
            with pytest.raises(Forbidden):
                lake.query(sql)
        assert sorted(data.rglob("*")) == before
        cur = lake.query_cursor()  # the same statements with no allow list in front
        assert cur.execute(refused[0]).fetchone()[0] > 0
        cur.execute(refused[1])
        with pytest.raises(duckdb.Error):
            cur.execute(refused[2])
        assert len(sorted(data.rglob("*"))) > len(before) + 1


def test_the_spill_folder_goes_with_the_lake(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        temp = Path(lake.query_cursor().execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert temp.is_dir() and Path(tempfile.gettempdir()) in temp.parents
    assert not temp.exists()


def test_errors_lose_hidden_names_suggestions_and_folders(target: Target) -> None:
    with pytest.raises(Unprocessable) as err:
        target.lake.query("SELECT * FROM sqlite_mastr")
    assert "sqlite_master" not in err.value.message
    with pytest.raises(Unprocessable) as err:
        target.lake.query("SELECT * FROM ducklake_snapshot")
    assert "__" not in err.value.message and "Did you mean" not in err.value.message
    with pytest.raises(Unprocessable) as err:
        target.lake.query("SELECT * FROM workerz")
    assert 'Did you mean "workers"?' in err.value.message  # a suggestion the caller may follow stays
    with pytest.raises(StorageError) as err, sandbox_errors(target.lake.ctx):
        raise duckdb.IOException(f"IO Error: Cannot open file \"{target.places['data']}main/x.parquet\" "
                                 "(catalog __lh_meta_0123abcd)")
    assert str(target.root) not in err.value.message and "__lh_meta" not in err.value.message
    assert "<lake>/main/x.parquet" in err.value.message

"""The lake: opening, the connection door, cursors, attach, two processes, settings, ops."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import duckdb
import pytest

import lakehouse
from lakehouse.errors import InvalidInput, LakehouseError, SettingsError
from lakehouse.settings import SETTINGS, Settings


def test_open_creates_the_layout(tmp_path):
    with lakehouse.open(tmp_path / "lake") as lk:
        assert (tmp_path / "lake" / "catalog.sqlite").is_file()
        assert (tmp_path / "lake" / "data").is_dir()
        schemas = {r[0] for r in lk.sql("SELECT schema_name FROM duckdb_schemas() WHERE database_name='lake'").fetchall()}
        assert {"main", "lh"} <= schemas
        assert lk.sql("SELECT lakehouse_version()").fetchone() == (lakehouse.__version__,)


def test_cursors_from_other_threads_see_functions_macros_and_tables(lake, write):
    lake.ingest(write("w.csv", "id,name\n1,a\n2,b\n"), "workers")
    results, errors = [], []

    def work():
        try:
            cur = lake.cursor()
            results.append(cur.execute(
                "SELECT count(*), lakehouse_version() FROM workers, lakehouse_datasets()").fetchone())
            results.append(lake.query("SELECT count(*) FROM workers").rows[0])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results.count((2, lakehouse.__version__)) == 4 and results.count([2]) == 4
    assert lake.cursor() is lake.cursor()  # one per thread, reused


def test_raw_cursor_of_the_connection_sees_udfs(lake):
    """A plain con.cursor() (no door) still sees the registered functions."""
    cur = lake._db.cursor()
    assert cur.execute("SELECT lakehouse_version()").fetchone() == (lakehouse.__version__,)


def test_attach_to_a_callers_connection(tmp_path, write):
    with lakehouse.open(tmp_path / "lake") as lk:
        lk.ingest(write("w.csv", "id,name\n1,a\n"), "workers")
    con = duckdb.connect(str(tmp_path / "app.duckdb"))
    con.execute("CREATE TABLE app_table AS SELECT 1 AS id")
    lk = lakehouse.attach(con, tmp_path / "lake")
    try:
        assert con.execute("SELECT count(*) FROM workers").fetchone() == (1,)
        assert con.execute("SELECT lakehouse_version()").fetchone() == (lakehouse.__version__,)
        assert con.execute("SELECT count(*) FROM lakehouse_datasets()").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM app.main.app_table").fetchone() == (1,)
    finally:
        lk.close()
    # closing the lake detaches it but leaves the caller's connection open
    assert con.execute("SELECT count(*) FROM app_table").fetchone() == (1,)
    con.close()


def test_two_processes_share_the_lake(tmp_path, write):
    root = tmp_path / "lake"
    with lakehouse.open(root) as lk:
        lk.ingest(write("w.csv", "id,name\n1,a\n"), "workers")
        before = lk.sql("SELECT max(snapshot_id) FROM lake.snapshots()").fetchone()[0]
        assert lk.query("SELECT count(*) FROM workers").rows == [[1]]
        writer = textwrap.dedent(f"""
            import lakehouse
            with lakehouse.open({str(root)!r}) as lk:
                r = lk.ingest(b"id,name\\n2,b\\n3,c\\n", "workers", mode="append", filename="more.csv")
                print(r.snapshot_id)
        """)
        out = subprocess.run([sys.executable, "-c", writer], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        new_snapshot = int(out.stdout.strip())
        assert new_snapshot > before
        assert lk.sql("SELECT count(*) FROM workers").fetchone() == (3,)
        assert lk.query("SELECT count(*) FROM workers").rows == [[3]]
        assert lk.sql("SELECT max(snapshot_id) FROM lake.snapshots()").fetchone()[0] == new_snapshot


def test_closed_lake_refuses_work(tmp_path):
    lk = lakehouse.open(tmp_path / "lake")
    lk.close()
    lk.close()  # idempotent
    with pytest.raises(LakehouseError, match="closed"):
        lk.sql("SELECT 1")


def test_bad_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInput, match="unsupported catalog"):
        lakehouse.open(tmp_path / "lake", catalog="mysql:x")


# -- settings ---------------------------------------------------------------------------
def test_settings_precedence(tmp_path, monkeypatch):
    (tmp_path / "lakehouse.toml").write_text('max_rows = 5\nquery_timeout_s = 3\nembedder = "hash"\n'
                                             '[models]\nlocal_fast = "ollama/qwen3:4b"\n')
    monkeypatch.setenv("LH_QUERY_TIMEOUT_S", "7.5")
    monkeypatch.setenv("LH_IMPORT_DIRS", "/a:/b")
    s = Settings.load(tmp_path, embedder="minilm")
    assert s.max_rows == 5  # toml over default
    assert s.query_timeout_s == 7.5  # env over toml
    assert s.embedder == "minilm"  # keyword over toml
    assert s.import_dirs == ["/a", "/b"]
    assert s.models == {"local_fast": "ollama/qwen3:4b"}
    assert s.threads == 0  # default


@pytest.mark.parametrize(
    ("toml", "env", "kwargs", "message"),
    [
        ("nope = 1\n", {}, {}, "unknown setting 'nope' in .*lakehouse.toml"),
        ('max_rows = "many"\n', {}, {}, "'max_rows' from .*lakehouse.toml must be int"),
        ("", {"LH_MAX_ROWS": "ten"}, {}, "'max_rows' from LH_MAX_ROWS must be int"),
        ("", {"LH_OBSERVER_LOG": "maybe"}, {}, "'observer_log' from LH_OBSERVER_LOG must be bool"),
        ("", {}, {"max_rows": True}, "'max_rows' from keyword arguments must be int"),
        ("", {}, {"bogus": 1}, "unknown setting 'bogus' in keyword arguments"),
        ("max_rows = \n", {}, {}, "not valid TOML"),
    ],
)
def test_settings_errors(tmp_path, toml, env, kwargs, message):
    (tmp_path / "lakehouse.toml").write_text(toml)
    with pytest.raises(SettingsError, match=message):
        Settings.load(tmp_path, env=env, **kwargs)


def test_open_rejects_bad_settings(tmp_path):
    with pytest.raises(SettingsError, match="unknown setting 'max_rowz'"):
        lakehouse.open(tmp_path / "lake", max_rowz=3)


def test_every_setting_is_documented():
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    for s in SETTINGS:
        assert s.help.strip(), s.name
        assert f"`{s.name}`" in readme, f"setting {s.name} missing from README"


# -- operation recording ----------------------------------------------------------------
def test_operations_are_recorded(tmp_path, write):
    root = tmp_path / "lake"
    with lakehouse.open(root) as lk:
        lk.ingest(write("w.csv", "id\n1\n"), "w")
        lk.query("SELECT * FROM w")
        with pytest.raises(LakehouseError):
            lk.query("SELECT * FROM nowhere")
        ops = lk.observer.recent()
        assert [(o.op, o.ok) for o in ops] == [("dataset.ingest", True), ("sql.query", True), ("sql.query", False)]
        assert ops[0].input["dataset"] == "w" and ops[0].rows == 1 and ops[0].duration_ms > 0
        assert ops[0].origin == "python" and ops[2].error_code == "sql_catalog" and "nowhere" in ops[2].error
    lines = [json.loads(x) for f in sorted((root / "observer").glob("ops-*.jsonl")) for x in f.read_text().splitlines()]
    assert [(x["op"], x["ok"]) for x in lines] == [("dataset.ingest", True), ("sql.query", True), ("sql.query", False)]
    assert set(lines[0]) >= {"id", "ts", "op", "origin", "duration_ms", "ok", "error_code", "input", "output", "rows"}


def test_ops_log_can_be_turned_off(tmp_path):
    with lakehouse.open(tmp_path / "lake", observer_log=False) as lk:
        lk.query("SELECT 1")
        assert len(lk.observer.recent()) == 1
    assert all(f.stat().st_size == 0 for f in (tmp_path / "lake" / "observer").glob("ops-*.jsonl"))


def test_read_write_cursor_finds_macros_before_the_lake(lake):
    """The user's cursor gets the macros as TEMP copies (searched before the lake's schema, so a
    vector_search needs no DuckLake catalog lookup) while CREATE TABLE still lands in the lake."""
    cur = lake.cursor()
    where = {r[0] for r in cur.execute(
        "SELECT database_name FROM duckdb_functions() WHERE function_name = 'vector_search'").fetchall()}
    assert "temp" in where
    cur.execute("CREATE TABLE made_here AS SELECT 1 AS x")
    assert cur.execute("SELECT database_name FROM duckdb_tables() WHERE table_name = 'made_here'").fetchall() == [
        ("lake",)]


def _catalog_reads(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
    """DuckLake snapshot reads (its metadata queries, from DuckDB's query log) that running `sql` caused."""
    cur.execute("CALL enable_logging('QueryLog')")
    try:
        cur.execute("CALL truncate_duckdb_logs()")
        cur.execute(sql).fetchall()
        return cur.execute("SELECT count(*) FROM duckdb_logs() WHERE contains(message, 'ducklake_' || 'snapshot')"
                           ).fetchone()[0]
    finally:
        cur.execute("CALL disable_logging()")


def test_query_cursor_resolves_builtins_before_the_lake(lake, write):
    """The read-only cursor looks names up in the macros, then DuckDB's built-ins, then the lake: a query that
    reads no lake table (a filter over a temp table, `list(id)`) starts no DuckLake transaction, while the
    user's read-write cursor, whose first schema must be the lake's (CREATE TABLE lands there), does."""
    lake.ingest(write("w.csv", "id,name\n1,a\n2,b\n"), "workers")
    qc = lake.query_cursor()
    qc.execute("CREATE TEMP TABLE picks AS SELECT * FROM (VALUES (1, 0.5), (2, 0.9)) t(id, u)")
    no_lake = "SELECT to_json(list(id)) FROM picks WHERE u < 0.7"
    assert qc.execute(no_lake).fetchall() == [("[1]",)]
    assert _catalog_reads(qc, no_lake) == 0
    # a dataset reads through the read path's view over its files: no catalog read either (engine/read_path.py)
    assert _catalog_reads(qc, "SELECT count(*) FROM workers") == 0
    assert _catalog_reads(qc, "SELECT count(*) FROM lake.main.workers") > 0  # the lake itself still resolves
    assert qc.execute("SELECT list(name ORDER BY id) FROM workers").fetchone() == (["a", "b"],)
    assert qc.execute("SELECT count(*) FROM lakehouse_datasets()").fetchone() == (1,)  # and the macros
    rw = lake.cursor()
    rw.execute("CREATE TEMP TABLE picks AS SELECT * FROM (VALUES (1, 0.5), (2, 0.9)) t(id, u)")
    assert _catalog_reads(rw, no_lake) > 0

"""The read-only query path: parser checks, DuckDB's sandbox, row cap, timeout."""

from __future__ import annotations

import duckdb
import pytest

import lakehouse
from lakehouse.engine.connection import LAKE_ALIAS
from lakehouse.engine.safe_sql import check_read_only
from lakehouse.errors import Forbidden, InvalidInput, QueryTimeout, Unprocessable


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One lake for the module: these tests only read (and check that nothing was written)."""
    root = tmp_path_factory.mktemp("safe_sql")
    (root / "w.csv").write_text("id,name,state\n1,Ann,IL\n2,Bob,WI\n3,Cy,IL\n")
    with lakehouse.open(root / "lake") as lk:
        lk.ingest(root / "w.csv", "workers")
        yield lk


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM workers",
        "select count(*) from workers where state = ?",
        "WITH il AS (SELECT * FROM workers WHERE state = 'IL') SELECT count(*) FROM il",
        "EXPLAIN SELECT * FROM workers",
        "DESCRIBE workers",
        "SHOW TABLES",
        "SUMMARIZE workers",
        "FROM workers",
        "SELECT * FROM workers; ",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SELECT snapshot_id FROM ducklake_snapshots('lake')",
        "PIVOT workers ON state USING count(*)",
        "SELECT name FROM workers WHERE state = ?::VARCHAR",
        "/* why */ EXPLAIN ANALYZE SELECT count(*) FROM workers",
        "SELECT " + "(" * 50 + "1" + ")" * 50,
    ],
)
def test_read_only_statements_pass(loaded, sql):
    params = ["IL"] if "?" in sql else None
    res = loaded.query(sql, params)
    assert res.columns and res.row_count >= 1


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE workers",
        "DELETE FROM workers",
        "UPDATE workers SET name = 'x'",
        "INSERT INTO workers VALUES (9, 'x', 'IL')",
        "CREATE TABLE x AS SELECT 1",
        "ALTER TABLE workers ADD COLUMN z INT",
        "ATTACH '/tmp/evil.db' AS evil",
        "DETACH lake",
        "COPY workers TO '/tmp/out.csv'",
        "COPY (SELECT 1) TO 'inside.csv'",
        "EXPORT DATABASE '/tmp/dump'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA database_list",
        "SET enable_external_access = true",
        "CALL pragma_version()",
        "USE memory",
        "SELECT 1; DROP TABLE workers",
        "EXPLAIN COPY workers TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "select * from READ_CSV ( '/etc/passwd' )",
        'SELECT * FROM "read_csv"(\'/etc/passwd\')',
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        'SELECT * FROM "/etc/passwd"',
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM /* hi */ read_csv('/etc/passwd') -- comment",
        "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x",
        "SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))",
        "SELECT * FROM workers WHERE id IN (SELECT 1 FROM read_parquet('/etc/x.parquet'))",
        "SELECT * FROM glob('/etc/*')",
        "SELECT getenv('HOME')",
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
        "SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot",
        "SELECT * FROM duckdb_databases()",
        "SHOW ALL TABLES",
    ],
)
def test_forbidden_statements(loaded, sql):
    with pytest.raises(Forbidden):
        loaded.query(sql)
    assert loaded.sql("SELECT count(*) FROM workers").fetchone() == (3,)


@pytest.mark.parametrize(("sql", "code"), [
    ("-- a comment and no statement", "invalid_sql"),
    ("SELECT " + " + ".join(["1"] * 2000), "sql_too_deep"),
    ("SELECT " + "(SELECT " * 400 + "1" + ")" * 400, "sql_too_deep"),
    ("SELECT * FROM workers WHERE", "sql_syntax"),
])
def test_what_cannot_be_read_is_a_clear_400(loaded, sql, code):
    """Formerly a 500 (sqlglot's recursion) or misreported ("2 statements" for a PIVOT, a `?::INTEGER`
    that "could not be verified"): DuckDB's own parser reads what DuckDB runs."""
    with pytest.raises(InvalidInput) as err:
        loaded.query(sql)
    assert err.value.code == code and err.value.status == 400


def test_checks_are_cached_and_parameters_bind(loaded):
    for _ in range(3):
        assert loaded.query("SELECT name FROM workers WHERE id = ?::INTEGER", [3]).rows == [["Cy"]]
    assert loaded.query("SELECT name FROM workers WHERE id = $id::INTEGER", {"id": 3}).rows == [["Cy"]]


def test_sandbox_refuses_even_without_the_parser(loaded):
    """Layer two: the query connection itself is read-only, locked and walled in."""
    cur = loaded.query_cursor()
    for sql in ("SELECT * FROM read_csv('/etc/passwd')", "ATTACH '/tmp/x.db' AS x",
                "SET enable_external_access = true", "INSERT INTO workers VALUES (9, 'x', 'IL')"):
        with pytest.raises(duckdb.Error):
            cur.execute(sql)
    assert cur.execute("SELECT count(*) FROM workers").fetchone() == (3,)
    assert cur.execute("SELECT current_setting('lock_configuration')").fetchone() == (True,)


def test_query_sees_new_commits(lake, write):
    lake.ingest(write("w.csv", "id,name,state\n1,Ann,IL\n"), "workers")
    assert lake.query("SELECT count(*) FROM workers").rows == [[1]]
    lake.ingest(write("m.csv", "id,name,state\n4,Di,OH\n"), "workers", mode="append")
    assert lake.query("SELECT count(*) FROM workers").rows == [[2]]


def test_row_cap_and_types(loaded):
    res = loaded.query("SELECT * FROM range(25) t(i)", max_rows=10)
    assert (res.row_count, res.truncated, len(res.rows)) == (10, True, 10)
    assert res.columns == [{"name": "i", "type": "BIGINT"}]
    res = loaded.query("SELECT * FROM range(10) t(i)", max_rows=10)
    assert (res.row_count, res.truncated) == (10, False)
    with pytest.raises(InvalidInput, match="max_rows"):
        loaded.query("SELECT 1", max_rows=-1)


def test_timeout_interrupts(loaded):
    with pytest.raises(QueryTimeout, match="interrupted after 0.2 s"):
        loaded.query("SELECT count(*) FROM range(100000000000) a", timeout_s=0.2)
    assert loaded.query("SELECT 42").rows == [[42]]  # the connection is usable afterwards


def test_errors_are_mapped(loaded):
    with pytest.raises(InvalidInput) as err:
        loaded.query("SELEC 1")
    assert err.value.code == "sql_syntax"
    with pytest.raises(Unprocessable) as err:
        loaded.query("SELECT * FROM no_such_table")
    assert "no_such_table" in err.value.message and not err.value.message.startswith("Catalog Error")
    with pytest.raises(InvalidInput):
        check_read_only("   ")


def test_lake_alias_is_the_catalog(loaded):
    assert loaded.query(f"SELECT count(*) FROM {LAKE_ALIAS}.main.workers").rows == [[3]]

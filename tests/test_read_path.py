"""The read-only path's views over Parquet files (engine/read_path.py): the same answers as DuckLake, never an
older snapshot than the last commit (this process's or another's), and DuckLake itself wherever the files are
not the whole truth."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

import lakehouse

CSV = b"id,name,rate,joined,tags\n1,Ann,21.5,2024-01-02,a\n2,Bob,18.25,2023-05-06,b\n3,Cy,30.0,2022-07-08,c\n"
QUERIES = [
    "SELECT * FROM people ORDER BY id",
    "SELECT name, rate FROM people WHERE rate > 20 ORDER BY name",
    "SELECT count(*), sum(rate), min(joined) FROM people",
    "SELECT p.name, q.kind FROM people p JOIN kinds q USING (id) ORDER BY 1",
]


def _both(root: Path, sql: str) -> tuple[Any, Any]:
    with lakehouse.open(root) as fast, lakehouse.open(root, fast_reads=False) as slow:
        a, b = fast.query(sql), slow.query(sql)
        return (a.columns, a.rows), (b.columns, b.rows)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    with lakehouse.open(tmp_path / "lake") as lake:
        lake.ingest(CSV, "people", filename="people.csv")
        lake.ingest(b"id,kind\n1,x\n3,y\n", "kinds", filename="kinds.csv")
    return tmp_path / "lake"


@pytest.mark.parametrize("sql", QUERIES)
def test_the_same_answers_as_ducklake(root: Path, sql: str) -> None:
    fast, slow = _both(root, sql)
    assert fast == slow


def test_merge_datasets_compaction_and_deletes_stay_exact(root: Path) -> None:
    with lakehouse.open(root) as lake:
        lake.ingest(b"id,name,rate,joined,tags\n2,Bobby,19.0,2023-05-06,b\n4,Di,25.0,2021-01-01,d\n", "people",
                    mode="delta", key="id", filename="d.csv")
        view = lake.query("SELECT id, name FROM people ORDER BY id").rows
        assert view == [[1, "Ann"], [2, "Bobby"], [3, "Cy"], [4, "Di"]]
        lake.compact("people")  # the base now has delete files: that dataset reads through DuckLake
        assert lake.query("SELECT id, name FROM people ORDER BY id").rows == view
        lake.sql("DELETE FROM kinds WHERE id = 3")  # a user's own delete: a delete file
        assert lake.query("SELECT * FROM kinds").rows == [[1, "x"]]
    for sql in QUERIES:
        fast, slow = _both(root, sql)
        assert fast == slow


def test_empty_tables_and_types(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake") as lake:
        lake.sql("CREATE TABLE lake.main.empty (id BIGINT, v DECIMAL(18, 3), t TIMESTAMP, l VARCHAR[])")
        lake.sql("INSERT INTO lake.lh.datasets VALUES ('empty', 'table', NULL, '[]', now()::TIMESTAMP, "
                 "now()::TIMESTAMP)")
        assert lake.query("SELECT count(*) FROM empty").rows == [[0]]
        assert [c["type"] for c in lake.query("SELECT * FROM empty").columns] == \
            ["BIGINT", "DECIMAL(18,3)", "TIMESTAMP", "VARCHAR[]"]
        lake.ingest(b'[{"id": 1, "s": {"a": 1, "b": [1, 2]}, "d": 1.25}]', "nested", filename="n.json")
        fast = lake.query("SELECT * FROM nested")
    with lakehouse.open(tmp_path / "lake", fast_reads=False) as slow:
        assert slow.query("SELECT * FROM nested").rows == fast.rows
        assert slow.query("SELECT * FROM nested").columns == fast.columns


def _append(root: str, n: int) -> None:
    with lakehouse.open(root) as lake:
        lake.ingest(f"id,name,rate,joined,tags\n{n},P{n},1.0,2020-01-01,z\n".encode(), "people", mode="append",
                    filename=f"a{n}.csv")


def test_another_process_commit_is_seen_by_the_next_query(root: Path) -> None:
    with lakehouse.open(root) as lake:
        assert lake.query("SELECT count(*) FROM people").rows == [[3]]  # the views are built
        ctx = multiprocessing.get_context("spawn")
        for n, expected in ((10, 4), (11, 5)):
            proc = ctx.Process(target=_append, args=(str(root), n))
            proc.start()
            proc.join(120)
            assert proc.exitcode == 0
            assert lake.query("SELECT count(*) FROM people").rows == [[expected]]


def test_a_dataset_replaced_or_dropped_is_never_read_from_old_files(root: Path) -> None:
    with lakehouse.open(root) as lake:
        assert lake.query("SELECT count(*) FROM people").rows == [[3]]
        lake.ingest(b"id,name,rate,joined,tags\n9,Z,1.0,2020-01-01,z\n", "people", mode="replace", filename="r.csv")
        assert lake.query("SELECT name FROM people").rows == [["Z"]]
        lake.drop_dataset("people")
        with pytest.raises(lakehouse.errors.LakehouseError, match="people"):
            lake.query("SELECT * FROM people")

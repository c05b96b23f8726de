"""Time travel (issue 15, Journal): `lake.query(sql, at_snapshot=N)`, `POST /sql` and the `sql_query` MCP tool with
`at_snapshot` read the lake as of DuckLake snapshot N; an unknown snapshot is a 404 naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from http_server import LiveServer
from mcp_client import call, http_target

import lakehouse
from lakehouse.engine.time_travel import KEEP
from lakehouse.errors import InvalidInput, LakehouseError, NotFound
from lakehouse.http import create_app

SQL = "SELECT list(id ORDER BY id) AS ids, list(name ORDER BY id) AS names FROM people"


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[lakehouse.Lake, dict[int, list[list[Any]]]]]:
    """A lake through create, append, replace, a DELETE and a second dataset; each snapshot's rows."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        steps = [(b"id,name\n1,ann\n2,bob\n", "create", None),
                 (b"id,name\n3,cy\n", "append", None),
                 (b"id,name\n10,dee\n11,eve\n12,fay\n", "replace", None)]
        expected: dict[int, list[list[Any]]] = {}
        for data, mode, key in steps:
            lake.ingest(data, "people", format="csv", mode=mode, key=key)
            snapshot = lake.journal(dataset="people", limit=1)[0]["snapshot_id"]
            expected[snapshot] = lake.query(SQL).rows
        lake.sql("DELETE FROM people WHERE id = 11")  # a snapshot no operation journals: time travel reaches it too
        expected[lake.sql("SELECT id FROM lake.current_snapshot()").fetchone()[0]] = lake.query(SQL).rows
        lake.ingest(b"x\n1\n", "other", format="csv")  # a later snapshot that does not touch people
        yield lake, expected


def test_each_snapshot_answers_exactly_its_rows(history: tuple[lakehouse.Lake, dict[int, list[list[Any]]]]) -> None:
    lake, expected = history
    assert [rows[0][0] for rows in expected.values()] == [[1, 2], [1, 2, 3], [10, 11, 12], [10, 12]]
    for snapshot, rows in expected.items():
        assert lake.query(SQL, at_snapshot=snapshot).rows == rows, snapshot
        # the dataset created later does not exist yet; the engine's own tables read as of then too
        with pytest.raises(LakehouseError, match="other"):
            lake.query("SELECT * FROM other", at_snapshot=snapshot)
        journaled = max(s for s in list(expected)[:3] if s <= snapshot)  # the DELETE made no journal row
        assert lake.query("SELECT max(snapshot_id) FROM lake.lh.journal", at_snapshot=snapshot).rows == [[journaled]]
    latest = max(expected)
    assert lake.query("SELECT count(*) FROM other").rows == [[1]]  # the latest snapshot is untouched
    assert lake.query(SQL, at_snapshot=latest + 1).rows == expected[latest]  # the `other` ingest kept people


def test_time_travel_reads_stay_sandboxed(history: tuple[lakehouse.Lake, dict[int, list[list[Any]]]]) -> None:
    lake, expected = history
    first = min(expected)
    with pytest.raises(LakehouseError):
        lake.query("SELECT * FROM read_text('/etc/passwd')", at_snapshot=first)
    with pytest.raises(LakehouseError):
        lake.query("COPY (SELECT 1) TO 'x.csv'", at_snapshot=first)


def test_unknown_and_invalid_snapshots(history: tuple[lakehouse.Lake, dict[int, list[list[Any]]]]) -> None:
    lake, _ = history
    with pytest.raises(NotFound) as err:
        lake.query("SELECT 1", at_snapshot=10_000)
    assert err.value.code == "snapshot_not_found" and err.value.details["field"] == "at_snapshot"
    with pytest.raises(InvalidInput, match="at_snapshot"):
        lake.query("SELECT 1", at_snapshot=-1)


def test_many_snapshots_more_than_the_instances_kept(tmp_path: Path) -> None:
    """More snapshots than time_travel.KEEP open instances: each still answers its own rows."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(b"id\n0\n", "t", format="csv")
        snaps = [lake.journal(limit=1)[0]["snapshot_id"]]
        for i in range(1, 7):
            lake.ingest(f"id\n{i}\n".encode(), "t", format="csv", mode="append")
            snaps.append(lake.journal(limit=1)[0]["snapshot_id"])
        for _ in range(2):
            for i, snap in enumerate(snaps):
                assert lake.query("SELECT count(*) FROM t", at_snapshot=snap).rows == [[i + 1]]


def test_over_http_and_mcp(history: tuple[lakehouse.Lake, dict[int, list[list[Any]]]]) -> None:
    lake, expected = history
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
        for snapshot, rows in expected.items():
            res = http.post("/sql", json={"sql": SQL, "at_snapshot": snapshot})
            assert res.status_code == 200 and res.json()["rows"] == rows, res.text
            result = call(http_target(url), "sql_query", {"sql": SQL, "at_snapshot": snapshot})
            assert not result.is_error and json.loads(result.content[0].text)["rows"] == rows
        res = http.post("/sql", json={"sql": "SELECT 1", "at_snapshot": 10_000})
        assert res.status_code == 404 and res.json()["error"]["code"] == "snapshot_not_found"
        res = http.post("/sql", json={"sql": "SELECT 1", "at_snapshot": "latest"})
        assert res.status_code == 400 and "at_snapshot" in res.json()["error"]["message"]
        result = call(http_target(url), "sql_query", {"sql": "SELECT 1", "at_snapshot": 10_000})
        assert result.is_error and "no snapshot 10000" in result.content[0].text


def test_closing_the_lake_closes_every_snapshot_instance(tmp_path: Path) -> None:
    """Each snapshot instance holds a DuckDB database, pooled cursors and a spill folder: none outlives the lake,
    and those evicted past time_travel.KEEP are closed at once."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(b"id\n0\n", "t", format="csv")
        for i in range(1, KEEP + 2):
            lake.ingest(f"id\n{i}\n".encode(), "t", format="csv", mode="append")
        snaps = [row["snapshot_id"] for row in lake.journal(dataset="t", limit=100)]
        instances = []
        for snap in snaps:
            assert lake.query("SELECT count(*) FROM t", at_snapshot=snap).rows[0][0] >= 1
            instances.append(lake.ctx.db.snapshots._entries[snap].instance)
        evicted = instances[:-KEEP]
        assert evicted and all(not Path(i.temp_dir).exists() for i in evicted)
    for instance in instances:
        assert not Path(instance.temp_dir).exists()
        with pytest.raises(duckdb.ConnectionException):
            instance.con.execute("SELECT 1")

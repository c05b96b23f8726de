"""The change journal (`lh.journal`, the journal op) and dataset.changes, through Python, SQL and HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.engine.ops import entrance
from lakehouse.errors import InvalidInput, NotFound
from lakehouse.http import create_app

CSV = b"id,name\n1,Ann\n2,Bob\n"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        yield lk


def _latest(lake: lakehouse.Lake) -> int:
    return lake.sql("SELECT id FROM lake.current_snapshot()").fetchone()[0]


def test_each_write_is_journalled_in_the_snapshot_it_made(lake: lakehouse.Lake) -> None:
    created = lake.ingest(CSV, "people", filename="p.csv")
    appended = lake.ingest(b"id,name\n3,Cy\n", "people", mode="append", filename="q.csv")
    replaced = lake.ingest(b"id,name\n9,Zed\n", "people", mode="replace", filename="r.csv")
    rows = {r["snapshot_id"]: r for r in lake.journal(dataset="people")}
    assert rows[created.snapshot_id]["op"] == "dataset.ingest"
    assert (rows[created.snapshot_id]["rows_added"], rows[created.snapshot_id]["rows_removed"]) == (2, 0)
    assert (rows[appended.snapshot_id]["rows_added"], rows[appended.snapshot_id]["rows_removed"]) == (1, 0)
    assert (rows[replaced.snapshot_id]["rows_added"], rows[replaced.snapshot_id]["rows_removed"]) == (1, 3)
    assert json.loads(rows[replaced.snapshot_id]["details"])["mode"] == "replace"
    assert rows[created.snapshot_id]["origin"] == "python"
    lake.drop_dataset("people")
    dropped = lake.journal(op="dataset.drop")[0]
    assert (dropped["dataset"], dropped["rows_removed"], dropped["snapshot_id"]) == ("people", 1, _latest(lake))


def test_corpus_and_playbook_writes_are_journalled(lake: lakehouse.Lake) -> None:
    lake.create_corpus("docs", rows=[{"id": 1, "text": "forklift"}, {"id": 2, "text": "welder"}])
    lake.add_to_corpus("docs", [{"id": 2, "text": "pastry chef"}, {"id": 3, "text": "crane"}])
    lake.rebuild_index("docs")
    lake.rollback_index("docs")
    lake.record_playbooks([{"query": "q", "corpus": "docs", "answer_id": 1}])
    lake.drop_corpus("docs")
    by_op: dict[str, list[dict]] = {}
    for r in lake.journal(corpus="docs", limit=100):
        by_op.setdefault(r["op"], []).append(r)
    created = [r for r in by_op["corpus.create"] if r["rows_added"]]
    assert created[0]["rows_added"] == 2
    added = [r for r in by_op["corpus.add"] if r["rows_added"]]
    assert (added[0]["rows_added"], added[0]["rows_removed"]) == (2, 1)
    assert json.loads(by_op["corpus.rollback"][0]["details"])["event"] == "rollback"
    assert by_op["corpus.drop"][0]["rows_removed"] == 3
    assert lake.journal(op="playbook.record")[0]["rows_added"] == 1


def test_the_caller_is_recorded(lake: lakehouse.Lake) -> None:
    lake.create_profile("night_shift", datasets=["people"], access="write")
    with entrance("http", profile="night_shift"):  # a caller names a profile of the lake (else profile_forbidden)
        lake.ingest(CSV, "people", filename="p.csv")
    row = lake.journal(dataset="people")[0]
    assert (row["origin"], row["profile"]) == ("http", "night_shift")


def test_a_failed_or_skipped_write_leaves_no_journal_row_and_no_snapshot(lake: lakehouse.Lake) -> None:
    lake.ingest(CSV, "people", filename="p.csv")
    before, entries = _latest(lake), len(lake.journal(limit=1000))
    assert lake.ingest(CSV, "people", filename="p.csv").skipped  # identical content
    with pytest.raises(InvalidInput):
        lake.ingest(b"id,name\nnot-a-number,X\n", "people", mode="append", filename="bad.csv")
    assert _latest(lake) == before
    assert len(lake.journal(limit=1000)) == entries


def test_snapshots_made_outside_the_engine_are_listed_with_duckdb_s_summary(lake: lakehouse.Lake) -> None:
    lake.sql("CREATE TABLE lake.main.scratch AS SELECT 1 AS x")
    row = lake.journal(limit=1)[0]
    assert row["op"] is None and row["snapshot_id"] == _latest(lake)
    assert "main.scratch" in json.loads(row["changes"])["tables_created"]
    assert all(r["op"] is not None for r in lake.journal(dataset="scratch"))  # a filter keeps journalled rows only


def test_journal_filters_and_limits(lake: lakehouse.Lake) -> None:
    first = lake.ingest(CSV, "a", filename="a.csv").snapshot_id
    lake.ingest(CSV, "b", filename="b.csv")
    lake.ingest(b"id,name\n5,E\n", "a", mode="append", filename="a2.csv")
    assert {r["dataset"] for r in lake.journal(dataset="a")} == {"a"}
    assert all(r["snapshot_id"] > first for r in lake.journal(since_snapshot=first))
    assert len(lake.journal(limit=2)) == 2
    newest_first = [r["snapshot_id"] for r in lake.journal()]
    assert newest_first == sorted(newest_first, reverse=True)
    with pytest.raises(InvalidInput) as err:
        lake.journal(limit=0)
    assert err.value.details["field"] == "limit"


def test_changes_of_a_plain_dataset(lake: lakehouse.Lake) -> None:
    s1 = lake.ingest(CSV, "people", filename="p.csv").snapshot_id
    s2 = lake.ingest(b"id,name\n3,Cy\n", "people", mode="append", filename="q.csv").snapshot_id
    out = lake.changes("people", s1)
    assert (out["from_snapshot"], out["to_snapshot"]) == (s1, s2)
    assert out["changes"] == [{"snapshot_id": s2, "change_type": "insert", "row": {"id": 3, "name": "Cy"}}]
    s3 = lake.ingest(b"id,name\n7,Gus\n", "people", mode="replace", filename="r.csv").snapshot_id
    at_replace = [(c["change_type"], c["row"]["id"]) for c in lake.changes("people", s2)["changes"]]
    assert at_replace == [("delete", 1), ("delete", 2), ("delete", 3), ("insert", 7)]
    assert len(lake.changes("people", 0)["changes"]) == 3 + 3 + 1  # inserted, deleted by the replace, inserted
    assert lake.changes("people", s3)["changes"] == []
    assert [c["row"]["id"] for c in lake.changes("people", 0, until_snapshot=s1)["changes"]] == [1, 2]


def test_changes_of_a_merge_dataset_are_by_key(lake: lakehouse.Lake) -> None:
    s1 = lake.ingest(CSV, "people", filename="p.csv").snapshot_id
    s2 = lake.ingest(b"id,name\n1,Ann B.\n4,Dee\n", "people", mode="delta", key="id", filename="d1.csv").snapshot_id
    lake.compact("people")  # moves rows from delta to base: no change
    s4 = lake.ingest(b"id,name\n4,Dee\n2,Bo\n", "people", mode="delta", key="id", filename="d2.csv").snapshot_id
    got = [(c["snapshot_id"], c["change_type"], c["row"]["id"], c["row"]["name"])
           for c in lake.changes("people", s1)["changes"]]
    assert got == [
        (s2, "update_preimage", 1, "Ann"), (s2, "update_postimage", 1, "Ann B."), (s2, "insert", 4, "Dee"),
        (s4, "update_preimage", 2, "Bob"), (s4, "update_postimage", 2, "Bo"),  # key 4 again with the same row: none
    ]
    lake.drop_dataset("people")
    gone = lake.changes("people", s4)["changes"]
    assert sorted((c["change_type"], c["row"]["id"]) for c in gone) == [("delete", 1), ("delete", 2), ("delete", 4)]


def test_changes_refuse_what_they_cannot_answer(lake: lakehouse.Lake) -> None:
    with pytest.raises(NotFound):
        lake.changes("nobody", 0)
    lake.ingest(CSV, "people", filename="p.csv")
    with pytest.raises(InvalidInput) as err:
        lake.changes("people", _latest(lake) + 5)
    assert err.value.code == "invalid_snapshot"


def test_journal_and_changes_over_sql_and_http(lake: lakehouse.Lake) -> None:
    s1 = lake.ingest(CSV, "people", filename="p.csv").snapshot_id
    lake.ingest(b"id,name\n3,Cy\n", "people", mode="append", filename="q.csv")
    rows = lake.sql("SELECT op, dataset, rows_added FROM journal(dataset := 'people') ORDER BY snapshot_id").fetchall()
    assert rows == [("dataset.ingest", "people", 2), ("dataset.ingest", "people", 1)]
    feed = lake.sql(f"SELECT change_type, \"row\"->>'name' FROM dataset_changes('people', {s1})").fetchall()
    assert feed == [("insert", "Cy")]
    assert lake.query(f"SELECT count(*) FROM dataset_changes('people', {s1})").rows == [[1]]  # the read-only path
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url) as http:
        body = http.get("/v1/journal", params={"dataset": "people", "limit": "1"}).json()
        assert [r["rows_added"] for r in body["journal"]] == [1]
        changes = http.get("/v1/datasets/people/changes", params={"since_snapshot": str(s1)}).json()
        assert changes["changes"][0]["row"] == {"id": 3, "name": "Cy"}
        bad = http.get("/v1/datasets/people/changes", params={"since_snapshot": "soon"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_since_snapshot"
        missing = http.get("/v1/datasets/nobody/changes")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "dataset_not_found"

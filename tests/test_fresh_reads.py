"""Reads see every commit made before them in this process, whatever results were left half-read: through
`lake.sql` / `lake.cursor()`, `Lake.query`, HTTP and the SQL functions (issue 16, item 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.http import create_app

CSV = b"id,name,role\n1,Ann,Forklift Operator\n2,Bob,Pastry Chef\n"


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[lakehouse.Lake, httpx.Client]]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(CSV, "people", filename="people.csv")
        lake.create_corpus("c", rows=[{"id": 1, "text": "forklift operator"}])
        with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield lake, http


def _half_read(lake: lakehouse.Lake) -> Any:
    """What a notebook leaves behind: a result read in part, on this thread's cursor."""
    rel = lake.sql("SELECT * FROM people")
    rel.fetchone()
    cur = lake.cursor()
    cur.execute("SELECT * FROM people").fetchone()
    return rel


# each write, then what must now be visible (a SQL check through the read-write cursor)
WRITES: list[tuple[str, Callable[[lakehouse.Lake], Any], str, Any]] = [
    ("ingest", lambda lk: lk.ingest(CSV, "fresh", filename="f.csv"), "SELECT count(*) FROM fresh", 2),
    ("append", lambda lk: lk.ingest(b"id,name,role\n3,Cy,Welder\n", "people", mode="append", filename="a.csv"),
     "SELECT count(*) FROM people", 3),
    ("delta", lambda lk: lk.ingest(b"id,name,role\n1,Ann,Crane Operator\n", "people", mode="delta", key="id",
                                   filename="d.csv"), "SELECT role FROM people WHERE id = 1", "Crane Operator"),
    ("compact", lambda lk: (lk.ingest(b"id,name,role\n2,Bo,Baker\n", "people", mode="delta", key="id",
                                      filename="d2.csv"), lk.compact("people")),
     "SELECT count(*) FROM lake.lh_store.people__delta", 0),
    ("drop", lambda lk: (lk.ingest(CSV, "gone", filename="g.csv"), lk.drop_dataset("gone")),
     "SELECT count(*) FROM (SHOW TABLES) WHERE name = 'gone'", 0),  # duckdb_tables() is not on the read-only allow list
    ("corpus create", lambda lk: lk.create_corpus("c2", rows=[{"id": 5, "text": "nurse"}]),
     "SELECT count(*) FROM lake.lh_corpus.c2", 1),
    ("corpus add", lambda lk: lk.add_to_corpus("c", [{"id": 2, "text": "welder"}]),
     "SELECT count(*) FROM lake.lh_corpus.c", 2),
    ("playbook record", lambda lk: lk.record_playbooks([{"query": "q", "corpus": "c", "answer_id": 1}]),
     "SELECT count(*) FROM lake.lh.playbooks", 1),
]


@pytest.mark.parametrize(("name", "write", "check", "expected"), WRITES, ids=[w[0] for w in WRITES])
def test_a_write_is_seen_by_the_next_read_on_every_path(served: tuple[lakehouse.Lake, httpx.Client], name: str,
                                                         write: Callable[[lakehouse.Lake], Any], check: str,
                                                         expected: Any) -> None:
    lake, http = served
    rel = _half_read(lake)
    write(lake)
    assert lake.sql(check).fetchone()[0] == expected  # the read-write cursor
    assert lake.cursor().execute(check).fetchone()[0] == expected
    assert lake.query(check).rows[0][0] == expected  # the sandboxed read-only path
    resp = http.post("/sql", json={"sql": check})
    assert resp.status_code == 200 and resp.json()["rows"][0][0] == expected
    assert rel.fetchall() is not None  # the half-read relation still reads to its end


def test_sql_functions_see_fresh_writes(served: tuple[lakehouse.Lake, httpx.Client]) -> None:
    lake, _ = served
    _half_read(lake)
    lake.ingest(CSV, "more", filename="m.csv")
    assert "more" in {r[0] for r in lake.sql("SELECT name FROM lakehouse_datasets()").fetchall()}
    assert "more" in lake.query("SELECT list(name) FROM lakehouse_datasets()").rows[0][0]
    lake.add_to_corpus("c", [{"id": 9, "text": "crane operator certified"}])
    ids = [r[0] for r in lake.sql("SELECT id FROM vector_search('c', 'crane operator certified', 1)").fetchall()]
    assert ids == ["9"]
    lake.record_playbooks([{"query": "crane", "corpus": "c", "answer_id": 9}])
    found = lake.query("SELECT answer_id FROM playbook_lookup('crane', 1)").rows
    assert found == [["9"]]

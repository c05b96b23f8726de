"""Corpora that follow their dataset (issue 16, item 9): append, delta, replace and compact reach the corpus in the
same operation; a failure to embed keeps the ingest and says how far the corpus got; `sync_corpus` catches up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lakehouse
from lakehouse.engine.vectors.engine import VectorEngine
from lakehouse.errors import InvalidInput, ProviderError

CSV = b"id,role,state\n1,Forklift Operator,IL\n2,Pastry Chef,WI\n3,Welder,OH\n"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        lk.ingest(CSV, "workers", filename="w.csv")
        lk.create_corpus("w", dataset="workers", text="role", metadata=["state"])
        yield lk


def _rows(lake: lakehouse.Lake) -> dict[str, str]:
    return dict(lake.sql("SELECT id, text FROM lake.lh_corpus.w").fetchall())


def _top(lake: lakehouse.Lake, text: str) -> str:
    return lake.vector_search("w", text, 1)[0].id


def test_append_delta_replace_and_compact_reach_the_corpus(lake: lakehouse.Lake) -> None:
    res = lake.ingest(b"id,role,state\n4,Crane Operator,IL\n", "workers", mode="append", filename="a.csv")
    assert res.followers["w"]["added"] == 1 and res.followers["w"]["removed"] == 0
    assert _rows(lake)["4"] == "Crane Operator" and _top(lake, "Crane Operator") == "4"

    res = lake.ingest(b"id,role,state\n2,Baker,WI\n2,Head Baker,WI\n", "workers", mode="delta", key="id",
                      filename="d.csv")
    assert res.followers["w"]["added"] == 1  # the newest delta row of id 2 wins, as in the dataset's view
    assert _rows(lake)["2"] == "Head Baker" and _top(lake, "Head Baker") == "2"
    assert lake.vectors.state("w").size == 4  # replaced, not added beside the old row

    out = lake.compact("workers")  # the view's rows do not change: nothing to rewrite
    assert out["followers"]["w"]["added"] == 0 and out["followers"]["w"]["removed"] == 0
    assert _rows(lake)["2"] == "Head Baker"

    res = lake.ingest(b"id,role,state\n1,Forklift Operator,IL\n9,Nurse,MN\n", "workers", mode="replace",
                      filename="r.csv")
    assert sorted(_rows(lake)) == ["1", "9"] and res.followers["w"]["removed"] == 3
    assert lake.corpus("w")["follow"]["lag"] == 0 and lake.corpus("w")["rows"] == 2


def test_a_failed_sync_keeps_the_ingest_and_catches_up(lake: lakehouse.Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    real = VectorEngine.add_to_corpus

    def unavailable(self: VectorEngine, *args: object, **kwargs: object) -> object:
        raise ProviderError("embedding provider unreachable", code="provider_error")

    monkeypatch.setattr(VectorEngine, "add_to_corpus", unavailable)
    res = lake.ingest(b"id,role,state\n5,Electrician,TX\n", "workers", mode="append", filename="e.csv")
    assert res.rows == 1 and res.followers["w"]["error"]["code"] == "provider_error"
    assert lake.query("SELECT count(*) FROM workers").rows == [[4]]  # the ingest stands
    follow = lake.corpus("w")["follow"]
    assert follow["lag"] == 1 and follow["error"]["code"] == "provider_error" and "5" not in _rows(lake)
    assert [c["follow"]["lag"] for c in lake.corpora()] == [1]

    monkeypatch.setattr(VectorEngine, "add_to_corpus", real)
    out = lake.sync_corpus("w")
    assert out["added"] == 1 and _rows(lake)["5"] == "Electrician"
    follow = lake.corpus("w")["follow"]
    assert follow["lag"] == 0 and follow["error"] is None


def test_only_dataset_corpora_follow(lake: lakehouse.Lake) -> None:
    lake.create_corpus("still", dataset="workers", text="role", follow=False)
    lake.ingest(b"id,role,state\n6,Plumber,CA\n", "workers", mode="append", filename="p.csv")
    assert lake.corpus("still")["follow"] is None and lake.corpus("still")["rows"] == 3
    with pytest.raises(InvalidInput, match="only a corpus built from a dataset can follow"):
        lake.create_corpus("q", sql="SELECT 1 AS id, 'x' AS text", follow=True)
    with pytest.raises(lakehouse.errors.NotFound, match="does not follow"):
        lake.sync_corpus("still")


def test_a_dropped_dataset_is_reported_and_a_dropped_corpus_forgotten(lake: lakehouse.Lake) -> None:
    lake.drop_dataset("workers")
    with pytest.raises(lakehouse.errors.NotFound, match="is gone"):
        lake.sync_corpus("w")
    assert lake.corpus("w")["follow"]["error"]["code"] == "dataset_not_found"
    lake.drop_corpus("w")
    assert lake.sql("SELECT count(*) FROM lake.lh.corpus_sync").fetchone()[0] == 0

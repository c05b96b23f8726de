"""Recorded outcomes carry their own evidence (issue 16, items 7-8): under default settings a recorded success
survives the relevance filter, marked as a playbook hit with its evidence; an exact-query success ranks first
unless a later failure negates it; and the dropped counts say what they count, the same from every surface."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import lakehouse

QUERY = "who can cover the night forklift shift"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lakehouse.Lake]:
    """Default settings (relevance filter on, threshold 0.3, margin 0.25) and the real minilm embedder."""
    with lakehouse.open(tmp_path_factory.mktemp("pb") / "lake") as lk:
        rows = [{"id": 100 + i, "text": f"Forklift operator, night shift, warehouse {i}", "metadata": {"state": "IL"}}
                for i in range(6)]
        rows.append({"id": 599, "text": "Welder, MIG and TIG certified, day shift", "metadata": {"state": "IL"}})
        lk.create_corpus("workers", rows=rows)
        yield lk


def test_a_recorded_success_survives_the_relevance_filter_with_its_evidence(lake: lakehouse.Lake) -> None:
    plain = lake.matrix_search(QUERY, ["workers"], use_playbook=True)
    assert "599" not in {h.id for h in plain.results}  # what embeddings alone would never surface
    lake.record_playbooks([{"query": QUERY, "corpus": "workers", "answer_id": 599, "outcome": "success",
                            "answer_text": "worker 599 worked"}])
    res = lake.matrix_search(QUERY, ["workers"], use_playbook=True)
    top = res.results[0]
    assert top.id == "599" and top.source == "playbook"  # the exact query's success ranks first
    ev = top.evidence
    assert ev["query"] == QUERY and ev["outcome"] == 1 and ev["exact_query"] is True and ev["age_days"] < 1
    assert "599" not in {d["id"] for d in res.dropped["relevance"]}
    # a similar query still gets it boosted, not first by right
    similar = lake.matrix_search("who can cover a night forklift shift tonight", ["workers"], use_playbook=True)
    hit = next(h for h in similar.results if h.id == "599")
    assert hit.source == "playbook" and hit.evidence["exact_query"] is False


def test_a_later_failure_negates_the_exact_success(lake: lakehouse.Lake) -> None:
    lake.record_playbooks([{"query": QUERY, "corpus": "workers", "answer_id": 599, "outcome": "failure"}])
    res = lake.matrix_search(QUERY, ["workers"], use_playbook=True)
    assert res.results[0].id != "599"


def test_the_boost_decays_with_age(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash", playbook_half_life_days=10.0) as lk:
        lk.create_corpus("c", rows=[{"id": i, "text": f"text {i}"} for i in range(3)])
        now = dt.datetime.now(dt.UTC)
        lk.record_playbooks([
            {"query": "q a", "corpus": "c", "answer_id": 1, "recorded_at": now.isoformat()},
            {"query": "q b", "corpus": "c", "answer_id": 2, "recorded_at": (now - dt.timedelta(days=20)).isoformat()},
        ])
        new = lk.matrix_search("q a", ["c"], use_playbook=True, relevance=False)
        old = lk.matrix_search("q b", ["c"], use_playbook=True, relevance=False)
        w_new = next(h for h in new.results if h.id == "1").evidence["weight"]
        w_old = next(h for h in old.results if h.id == "2").evidence["weight"]
        assert w_old == pytest.approx(w_new / 4, rel=0.02)  # two half-lives


def test_dropped_counts_and_sql_options_match_python(lake: lakehouse.Lake) -> None:
    res = lake.matrix_search("forklift", ["workers"], metadata_filter={"state": "WI"}, k_per_corpus=3)
    assert res.dropped["metadata_filter_rows"] == 7  # corpus rows the pre-filter excluded
    assert res.dropped["metadata_filter_results"] == 3  # results the unfiltered search had that the filter dropped
    assert res.results == []
    py = lake.matrix_search(QUERY, ["workers"], threshold=0.1, use_playbook=True)
    sql = lake.query("SELECT id, source, evidence FROM matrix_search(?, corpora := ['workers'], threshold := 0.1, "
                     "use_playbook := true)", [QUERY]).rows
    assert [r[0] for r in sql] == [h.id for h in py.results]  # one pipeline, the same options
    assert [r[1] for r in sql] == [h.source for h in py.results]
    assert [json.loads(r[2]) if r[2] else None for r in sql] == [h.evidence for h in py.results]
    with pytest.raises(lakehouse.errors.InvalidInput, match="unknown mode 'nope'"):
        lake.query("SELECT * FROM matrix_search('x', force_mode := 'nope')")

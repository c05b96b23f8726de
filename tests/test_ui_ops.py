"""The operations behind the web UI: pages of rows, the staffing console's job orders and fill probability,
and the ops tail that leaves out the UI's own polling."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from ui_lake import build_staffing_lake, staffing_fixture  # noqa: F401

import lakehouse
from lakehouse.engine.ops import entrance
from lakehouse.engine.ops.ui_ops import MIN_HISTORY, at_least, job_query
from lakehouse.errors import InvalidInput, NotFound


def test_dataset_pages_cover_every_row_once_in_a_stable_order(staffing: lakehouse.Lake) -> None:
    call = staffing.ops.call
    pages = [call("dataset.rows", name="workers", offset=o, limit=70) for o in (0, 70, 140, 210)]
    assert [p["total"] for p in pages] == [200] * 4
    assert [len(p["rows"]) for p in pages] == [70, 70, 60, 0]
    ids = [r[0] for p in pages for r in p["rows"]]
    assert ids == sorted(ids) and len(set(ids)) == 200  # ORDER BY ALL: the id column leads
    assert pages[0]["columns"][0] == {"name": "id", "type": "BIGINT"}
    assert call("dataset.rows", name="workers", offset=70, limit=70)["rows"] == pages[1]["rows"]


def test_dataset_rows_refuses_unknown_datasets_and_oversized_pages(staffing: lakehouse.Lake) -> None:
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        staffing.ops.call("dataset.rows", name="nope")
    with pytest.raises(InvalidInput, match="limit"):
        staffing.ops.call("dataset.rows", name="workers", limit=100_000)
    with pytest.raises(InvalidInput, match="invalid dataset name|dataset"):
        staffing.ops.call("dataset.rows", name="workers; DROP TABLE x")


def test_corpus_rows_in_insertion_order_with_metadata_as_objects(staffing: lakehouse.Lake) -> None:
    page = staffing.ops.call("corpus.rows", name="candidates", offset=0, limit=5)
    assert page["total"] == staffing.corpus("candidates")["rows"]
    assert [c["name"] for c in page["columns"]] == ["id", "text", "metadata"]
    first = page["rows"][0]
    assert isinstance(first[2], dict) and set(first[2]) == {"role", "state", "city", "source"}
    assert first[1].startswith(first[2]["role"])
    with pytest.raises(NotFound, match="no corpus named 'nope'"):
        staffing.ops.call("corpus.rows", name="nope")


def test_job_orders_are_open_ones_with_the_search_the_console_runs(staffing: lakehouse.Lake) -> None:
    out = staffing.ops.call("staffing.job_orders", limit=100)
    expected = staffing.sql("SELECT count(*) FROM job_orders WHERE status = 'open'").fetchone()[0]
    assert out["total"] == expected == len(out["job_orders"])
    assert out["corpora"] == ["workers", "candidates"] and out["missing_corpora"] == []
    job = out["job_orders"][0]
    assert job["status"] == "open" and isinstance(job["required_certifications"], list)
    # the words past placements were recorded under (lakehouse demo), so playbooks apply to the same job
    demo_query = staffing.sql(
        "SELECT role || ' in ' || city || ', ' || state || coalesce('. Requires: ' || "
        "nullif(array_to_string(required_certifications, ', '), ''), '') FROM job_orders WHERE id = ?",
        [job["id"]]).fetchone()[0]
    assert job["query"] == demo_query
    assert job["search"]["query"] == demo_query
    assert job["search"]["metadata_filter"] == {"state": [job["state"]]}
    assert job["search"]["use_playbook"] is True
    assert job["search"]["top"] == min(max(8, 2 * job["headcount"]), 50)


def test_job_orders_filter_by_state_and_ids_and_page(staffing: lakehouse.Lake) -> None:
    call = staffing.ops.call
    il = call("staffing.job_orders", state="IL", limit=100)
    assert il["job_orders"] and {j["state"] for j in il["job_orders"]} == {"IL"}
    some = [j["id"] for j in il["job_orders"][:2]]
    assert [j["id"] for j in call("staffing.job_orders", ids=some, status=None)["job_orders"]] == sorted(some)
    everything = call("staffing.job_orders", status=None, limit=1000)
    assert everything["total"] == staffing.sql("SELECT count(*) FROM job_orders").fetchone()[0]
    second = call("staffing.job_orders", status=None, offset=3, limit=3)["job_orders"]
    assert [j["id"] for j in second] == [j["id"] for j in everything["job_orders"][3:6]]


def test_job_orders_say_what_is_missing(staffing: lakehouse.Lake) -> None:
    call = staffing.ops.call
    with pytest.raises(NotFound):
        call("staffing.job_orders", dataset="nope")
    with pytest.raises(InvalidInput, match="has no column 'client'") as err:
        call("staffing.job_orders", dataset="workers")
    assert err.value.code == "not_job_orders"
    out = call("staffing.job_orders", corpora=["workers", "resumes"], limit=1)
    assert out["corpora"] == ["workers"] and out["missing_corpora"] == ["resumes"]
    assert call("staffing.job_orders", corpora=["resumes"], limit=1)["job_orders"][0]["search"] is None


def test_job_query_reads_like_the_demo() -> None:
    assert job_query("Welder", "Joliet", "IL", ["AWS D1.1", "OSHA-10"]) == "Welder in Joliet, IL. Requires: AWS D1.1, OSHA-10"
    assert job_query("Welder", "Joliet", "IL", []) == "Welder in Joliet, IL"


def _brute_force(probabilities: list[float], n: int) -> float:
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(probabilities)):
        if sum(outcome) >= n:
            p = 1.0
            for hit, q in zip(outcome, probabilities):
                p *= q if hit else 1 - q
            total += p
    return total


def test_at_least_is_the_poisson_binomial_tail() -> None:
    rng = random.Random(5)
    for _ in range(40):
        probs = [rng.random() for _ in range(rng.randint(0, 8))]
        n = rng.randint(0, 9)
        assert at_least(probs, n) == pytest.approx(_brute_force(probs, n), abs=1e-12)
    assert at_least([], 0) == 1.0 and at_least([0.9], 2) == 0.0 and at_least([1.0, 1.0], 2) == 1.0


def _job_with_matches(lake: lakehouse.Lake) -> dict:
    for job in lake.ops.call("staffing.job_orders", limit=100)["job_orders"]:
        hits = lake.matrix_search(**job["search"]).results
        if len(hits) >= 2 and job["headcount"] <= 2:
            return job
    raise AssertionError("no open job order with matches in the test lake")


def test_fill_probability_moves_with_recorded_outcomes(tmp_path: Path) -> None:
    with build_staffing_lake(tmp_path / "lake", rows=200) as lake:
        job = _job_with_matches(lake)
        fill = lambda: lake.ops.call("staffing.fill_probability", job_order_ids=[job["id"]])["results"][0]  # noqa: E731
        before = fill()
        assert before["job_order_id"] == job["id"] and before["headcount"] == job["headcount"]
        assert 0.0 < before["probability"] < 1.0 and before["matches"] >= 2
        hits = lake.matrix_search(**job["search"]).results
        lake.record_playbooks([{"query": job["query"], "corpus": h.corpus, "answer_id": h.id, "outcome": "success"}
                               for h in hits[:2]])
        better = fill()
        assert better["probability"] > before["probability"] and better["expected_fills"] > before["expected_fills"]
        lake.record_playbooks([{"query": job["query"], "corpus": h.corpus, "answer_id": h.id, "outcome": "failure"}
                               for h in hits for _ in range(3)])
        assert fill()["probability"] < before["probability"]


def test_fill_probability_history_scopes_and_missing_ids(staffing: lakehouse.Lake) -> None:
    jobs = staffing.ops.call("staffing.job_orders", limit=100)["job_orders"]
    out = staffing.ops.call("staffing.fill_probability", job_order_ids=[jobs[0]["id"], 999_999])
    assert out["missing_ids"] == [999_999] and len(out["results"]) == 1
    history = out["results"][0]["history"]
    placements, ok = staffing.sql(
        "SELECT count(*), count(*) FILTER (outcome IN ('completed', 'active')) FROM placements").fetchone()
    assert placements >= MIN_HISTORY
    if history["scope"] == "all":  # 200 workers: few placements per role, so the widest scope answers
        assert (history["placements"], history["successes"]) == (placements, ok)
    assert history["success_rate"] == pytest.approx((history["successes"] + 1) / (history["placements"] + 2), abs=1e-4)
    alone = staffing.ops.call("staffing.fill_probability", job_order_ids=[jobs[0]["id"]], placements=None)
    assert alone["results"][0]["history"] == {"scope": "none", "placements": 0, "successes": 0, "success_rate": 0.5}


def test_ops_tail_can_leave_out_an_origin(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.datasets()
        with entrance("ui"):
            lake.datasets()
        origins = {o["origin"] for o in lake.observed_ops(op="dataset.list")}
        assert origins == {"python", "ui"}
        assert {o["origin"] for o in lake.observed_ops(op="dataset.list", exclude_origin="ui")} == {"python"}

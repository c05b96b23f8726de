"""BM25 text search (DuckDB fts sidecar) and hybrid fusion over a small hand-made corpus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import lakehouse
from lakehouse.engine.names import sql_string
from lakehouse.engine.vectors import fusion, text_index
from lakehouse.engine.vectors.hits import RRF_K, Hit
from lakehouse.engine.vectors.text_index import index_for, text_search
from lakehouse.errors import InvalidInput

DOCS = [
    {"id": "forklift", "text": "The forklift operator moves pallets in the warehouse."},
    {"id": "crane", "text": "Tower crane inspection checklist for construction sites."},
    {"id": "welding", "text": "Welding safety: helmets, gloves and ventilation."},
    {"id": "payroll", "text": "Quarterly payroll report for the finance department."},
    {"id": "pallets", "text": "Stacking pallets safely: weight limits and shrink wrap."},
    {"id": "cafe", "text": "The café serves crème brûlée to visiting inspectors."},
]


def values_sql(docs: list[dict[str, str]]) -> str:
    rows = ", ".join(f"({sql_string(d['id'])}, {sql_string(d['text'])})" for d in docs)
    return f"SELECT * FROM (VALUES {rows}) AS t(id, text)"


def make_lake(root: Path) -> lakehouse.Lake:
    lk = lakehouse.open(root, embedder="hash")
    lk.create_corpus("docs", sql=values_sql(DOCS))
    return lk


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lakehouse.Lake]:
    """One lake for the module (opening lakes is the slow part); tests that change a corpus use their own."""
    lk = make_lake(tmp_path_factory.mktemp("text") / "lake")
    try:
        yield lk
    finally:
        text_index.close_all(lk.vectors)
        lk.close()


def ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


def test_bm25_ranks_the_matching_doc_first(lake: lakehouse.Lake) -> None:
    hits = text_search(lake.vectors, "docs", "crane inspection", 3)
    assert hits[0].id == "crane"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert hits[0].score > 0
    # only rows sharing a term with the query come back
    assert set(ids(hits)) <= {"crane", "cafe"}
    path = lake.root / "indexes" / "docs" / "fts.duckdb"
    assert path.exists()


@pytest.mark.parametrize("query", ["pallets forklift", "safety inspection", "crème brûlée inspectors",
                                   "the warehouse pallets pallets", "quarterly weight"])
def test_scores_are_duckdbs_own_bm25(lake: lakehouse.Lake, query: str) -> None:
    """The in-memory postings score exactly as the index's `match_bm25` (same ranks, scores to float32)."""
    hits = text_search(lake.vectors, "docs", query, 10)
    opened = index_for(lake.vectors, "docs").ensure()
    assert opened is not None
    state = lake.vectors.state("docs")
    want = opened.con.execute(
        "SELECT name, score FROM (SELECT name, fts_main_docs.match_bm25(name, ?, k := 1.2, b := 0.75) AS score "
        "FROM fts_main_docs.docs) WHERE score IS NOT NULL ORDER BY score DESC, name", [query]).fetchall()
    assert [h.id for h in hits] == [str(state.ids[key]) for key, _ in want]
    np.testing.assert_allclose([h.score for h in hits], [score for _, score in want], rtol=1e-6)


def test_stemming_accents_and_stopwords(lake: lakehouse.Lake) -> None:
    assert ids(text_search(lake.vectors, "docs", "operators", 5)) == ["forklift"]
    assert ids(text_search(lake.vectors, "docs", "inspections", 5)) == ["crane"]
    assert ids(text_search(lake.vectors, "docs", "CAFE creme", 5)) == ["cafe"]
    assert text_search(lake.vectors, "docs", "the and for", 5) == []  # stopwords only
    assert text_search(lake.vectors, "docs", "pallets", 0) == []


def test_allowed_ids_restrict_the_results(lake: lakehouse.Lake) -> None:
    assert set(ids(text_search(lake.vectors, "docs", "pallets", 5))) == {"forklift", "pallets"}
    assert ids(text_search(lake.vectors, "docs", "pallets", 5, ids=["pallets", "payroll"])) == ["pallets"]
    assert text_search(lake.vectors, "docs", "pallets", 5, ids=["payroll"]) == []
    assert text_search(lake.vectors, "docs", "pallets", 5, ids=[]) == []
    keys, scores = index_for(lake.vectors, "docs").search("pallets", 5, np.array([0], dtype=np.int64))
    assert keys.tolist() == [0] and len(scores) == 1


def test_added_and_removed_rows_make_the_index_stale(lake: lakehouse.Lake) -> None:
    eng = lake.vectors
    lake.create_corpus("stale", sql=values_sql(DOCS[:3]))
    assert text_search(eng, "stale", "excavator", 5) == []
    index = index_for(eng, "stale")
    built = index.builds
    eng.add_to_corpus("stale", [{"id": "digger", "text": "The excavator digs trenches."}])
    assert ids(text_search(eng, "stale", "excavator", 5)) == ["digger"]
    assert index.builds == built + 1
    text_search(eng, "stale", "excavator", 5)
    assert index.builds == built + 1  # fresh: not rebuilt again
    # a replaced row: the new text is found, the old one is not
    eng.add_to_corpus("stale", [{"id": "digger", "text": "The bulldozer pushes soil."}])
    assert text_search(eng, "stale", "excavator", 5) == []
    assert ids(text_search(eng, "stale", "bulldozer", 5)) == ["digger"]
    eng.remove_from_corpus("stale", ["digger"])
    assert text_search(eng, "stale", "bulldozer", 5) == []


def test_index_file_is_reused_after_a_restart(lake: lakehouse.Lake) -> None:
    text_search(lake.vectors, "docs", "welding", 1)
    text_index.close_all(lake.vectors)  # as after a restart: the next search opens the file on disk
    assert ids(text_search(lake.vectors, "docs", "welding", 1)) == ["welding"]
    assert index_for(lake.vectors, "docs").builds == 0


@pytest.mark.parametrize("garbage", [b"", b"this is not a duckdb file" * 100])
def test_corrupt_index_file_is_rebuilt(lake: lakehouse.Lake, garbage: bytes) -> None:
    text_search(lake.vectors, "docs", "welding", 1)
    text_index.close_all(lake.vectors)
    path = lake.root / "indexes" / "docs" / "fts.duckdb"
    path.write_bytes(garbage)
    assert ids(text_search(lake.vectors, "docs", "welding", 1)) == ["welding"]
    assert index_for(lake.vectors, "docs").builds == 1
    assert not list(path.parent.glob(".fts.duckdb.*"))  # no temp files left behind


def test_k_bigger_than_the_corpus_returns_all_matching_rows(lake: lakehouse.Lake) -> None:
    every = " ".join(d["text"] for d in DOCS)
    assert sorted(ids(text_search(lake.vectors, "docs", every, 1000))) == sorted(d["id"] for d in DOCS)
    hybrid = fusion.hybrid_search(lake.vectors, "docs", "pallets", 1000)
    assert sorted(ids(hybrid)) == sorted(d["id"] for d in DOCS)  # the vector side returns every row
    assert [h.rank for h in hybrid] == list(range(1, len(DOCS) + 1))


def test_rrf_prefers_a_doc_good_in_both_lists() -> None:
    vec = [Hit("v_only", 0.9, 1), Hit("both", 0.8, 2), Hit("x", 0.1, 3)]
    txt = [Hit("t_only", 9.0, 1), Hit("both", 8.0, 2), Hit("y", 1.0, 3)]
    fused = fusion.fuse_rrf(vec, txt, 3)
    assert ids(fused) == ["both", "t_only", "v_only"]  # a tie (both 1 / (RRF_K + 1), both best rank 1): by id
    assert fused[0].score == pytest.approx(2 / (RRF_K + 2))
    assert [h.rank for h in fused] == [1, 2, 3]
    lin = fusion.fuse_linear(vec, txt, 3, weight=0.5)
    assert lin[0].id == "both"


def test_hybrid_search_end_to_end(lake: lakehouse.Lake) -> None:
    eng = lake.vectors
    # "pallets" is strong for both the forklift and pallets docs in BM25; the vector side agrees
    for method in ("rrf", "linear"):
        hits = fusion.hybrid_search(eng, "docs", "stacking pallets weight limits", 3, fusion=method)
        assert hits[0].id == "pallets"
        assert [h.rank for h in hits] == [1, 2, 3]
    # the doc ranked first by both searches is first after fusion
    q = "welding helmets gloves ventilation"
    assert eng.search("docs", q, 1)[0].id == text_search(eng, "docs", q, 1)[0].id == "welding"
    assert fusion.hybrid_search(eng, "docs", q, 2)[0].id == "welding"
    restricted = fusion.hybrid_search(eng, "docs", q, 5, ids=["payroll", "crane"])
    assert set(ids(restricted)) == {"payroll", "crane"}


def test_invalid_arguments(lake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput, match="'rrf' or 'linear'") as info:
        lake.hybrid_search("docs", "pallets", 3, fusion="borda")
    assert info.value.code == "invalid_fusion" and info.value.details["field"] == "fusion"
    with pytest.raises(InvalidInput, match="greater than or equal to 0") as info:
        lake.text_search("docs", "pallets", -1)
    assert info.value.code == "invalid_k"
    with pytest.raises(InvalidInput, match="query"):
        lake.text_search("docs", "   ", 3)


def test_emptied_dropped_and_recreated_corpus(lake: lakehouse.Lake) -> None:
    eng = lake.vectors
    lake.create_corpus("gone", sql=values_sql([{"id": "a", "text": "alpha beta"}]))
    assert ids(text_search(eng, "gone", "alpha", 5)) == ["a"]
    eng.remove_from_corpus("gone", ["a"])
    assert text_search(eng, "gone", "alpha", 5) == []  # no rows: nothing to index
    # dropped and recreated with the same ids and size: the old index must not answer
    eng.drop_corpus("gone")
    lake.create_corpus("gone", sql=values_sql([{"id": "a", "text": "gamma delta"}]))
    assert text_search(eng, "gone", "alpha", 5) == []
    assert ids(text_search(eng, "gone", "gamma", 5)) == ["a"]
    text_index.forget(eng, "gone")  # what drop_corpus should call: closes and deletes the sidecar
    assert not (lake.root / "indexes" / "gone" / "fts.duckdb").exists()


def test_searches_keep_working_while_the_index_is_rebuilt(lake: lakehouse.Lake) -> None:
    eng = lake.vectors
    lake.create_corpus("busy", sql=values_sql(DOCS))
    errors: list[str] = []
    done = threading.Event()

    def searcher() -> None:
        while not done.is_set():
            try:
                assert "pallets" in ids(text_search(eng, "busy", "pallets", 10))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
                done.set()

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for word in ("alpha", "bravo"):  # digits are not tokens for fts: words only
            eng.add_to_corpus("busy", [{"id": word, "text": f"{word} pallets"}])
            assert ids(text_search(eng, "busy", word, 3)) == [word]
    finally:
        done.set()
        for t in threads:
            t.join()
    assert errors == []

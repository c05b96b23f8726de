"""The matrix layer: multi-corpus merge, relevance filter, downgrade gate, metadata filters, playbooks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import lakehouse
from lakehouse.engine.chat.routing import ModelTable
from lakehouse.engine.matrix import gate
from lakehouse.engine.matrix.builders import build_rows, chunk_markdown, python_symbols
from lakehouse.errors import InvalidInput

PEOPLE = [
    {"id": 1, "text": "Forklift operator with OSHA-10, Joliet IL", "metadata": {"state": "IL", "active": True}},
    {"id": 2, "text": "Forklift operator, reach truck certified, Milwaukee WI", "metadata": {"state": "WI", "active": True}},
    {"id": 3, "text": "Forklift operator, night shift, Gary IN", "metadata": {"state": "IN", "active": False}},
    {"id": 4, "text": "Forklift driver OSHA-10 Chicago IL", "metadata": {"state": "IL", "active": 1}},
    {"id": 5, "text": "Pastry chef, Madison WI", "metadata": {"state": "WI"}},
    {"id": 6, "text": "Forklift operator OSHA-30 Aurora", "metadata": {"active": True}},  # no state
]


@pytest.fixture
def mlake(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False) as lk:
        lk.create_corpus("workers", rows=PEOPLE)
        lk.create_corpus("candidates", rows=[{"id": f"c{i}", "text": f"candidate forklift operator {c}",
                                              "metadata": {"state": c}} for i, c in enumerate(["IL", "WI", "OH"])])
        lk.create_corpus("job_orders", rows=[{"id": "j1", "text": "job order: forklift operators needed Joliet IL",
                                              "metadata": {"state": "IL"}},
                                             {"id": "j2", "text": "job order: bakers needed", "metadata": {"state": "WI"}}])
        yield lk


def test_three_corpora_merged_with_attribution(mlake):
    res = mlake.matrix_search("forklift operator", ["workers", "candidates", "job_orders"], k_per_corpus=2, top=5)
    assert len(res.results) == 5 and [h.rank for h in res.results] == [1, 2, 3, 4, 5]
    assert {h.corpus for h in res.results} == {"workers", "candidates", "job_orders"}
    assert all(a.score >= b.score for a, b in zip(res.results, res.results[1:]))
    per = {}
    for h in res.results:
        per[h.corpus] = per.get(h.corpus, 0) + 1
    assert max(per.values()) <= 2  # k_per_corpus
    # one embedder: the merged score is the raw cosine of query and chunk
    q = mlake.vectors.embedder("hash").embed_one("forklift operator")
    v = mlake.vectors.embed([res.results[0].text])[0]
    assert res.results[0].score == pytest.approx(float(v @ q), abs=2e-3)


def test_different_embedders_merge_by_rank_fusion(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False) as lk:
        lk.create_corpus("a", rows=PEOPLE, embedder="hash")
        lk.create_corpus("b", rows=PEOPLE, embedder="hash:128")
        res = lk.matrix_search("forklift operator OSHA-10", ["a", "b"], k_per_corpus=3, top=6)
        scores = sorted({round(h.score, 6) for h in res.results}, reverse=True)
        assert scores == [round(1 / 61, 6), round(1 / 62, 6), round(1 / 63, 6)]
        assert {h.corpus for h in res.results if h.rank <= 2} == {"a", "b"}  # rank 1 of each corpus tie at the top


def test_relevance_filter_drops_neighbouring_chunks(tmp_path):
    """Seed gate G3.4.B: one chunk about the query; its neighbours in the same doc are not."""
    doc = ("# Operations handbook\n\n## Forklift certification\n\nEvery forklift operator must hold a current OSHA "
           "powered industrial truck certification, renewed every three years.\n\n## Cafeteria\n\nThe cafeteria "
           "serves lunch from noon; vegetarian options rotate weekly.\n\n## Parking\n\nVisitor parking is on the "
           "north lot; permits are issued at reception.\n")
    rows = [{"id": f"handbook.md#{i}", "text": f"{h}\n{c}", "metadata": {"file": "handbook.md"}}
            for i, (h, c) in enumerate(chunk_markdown(doc))]
    with lakehouse.open(tmp_path / "lake") as lk:  # minilm: relevance needs a semantic embedder
        lk.create_corpus("handbook", rows=rows)
        res = lk.matrix_search("how often must forklift operators renew their certification?", ["handbook"])
        assert [h.id for h in res.results] == ["handbook.md#0"]
        dropped = {d["id"]: d["reason"] for d in res.dropped["relevance"]}
        assert set(dropped) == {"handbook.md#1", "handbook.md#2"} and all("relevance" in r for r in dropped.values())
        off = lk.matrix_search("how often must forklift operators renew their certification?", ["handbook"],
                               relevance=False)
        assert len(off.results) == 3 and off.dropped["relevance"] == []
        # the filter judges cosines for any metric: an l2sq corpus of the same rows keeps the same chunk
        lk.create_corpus("handbook_l2", rows=rows, metric="l2sq")
        l2 = lk.matrix_search("how often must forklift operators renew their certification?", ["handbook_l2"])
        assert [h.id for h in l2.results] == ["handbook.md#0"]
        assert l2.results[0].relevance == pytest.approx(res.results[0].relevance, abs=1e-3)


@pytest.mark.parametrize(("model", "weak"), [
    ("ollama/qwen3:8b", True), ("qwen2.5-coder", True), ("llama3.1:70b", True), ("mistral:7b", True),
    ("claude-sonnet-4", False), ("openrouter/anthropic/claude-opus-4", False), ("gpt-5", False),
    ("openrouter/openai/gpt-4o", False), ("grok-4", False), ("kimi/kimi-k2", False), ("something-new", True),
])
def test_is_weak_model_defaults(model, weak):
    assert gate.is_weak_model(model) is weak


def test_is_weak_model_configurable_and_tiers():
    models = {"strong": ["my-big-*"], "frontier_review": "my-big-model"}
    table = ModelTable(models)
    assert gate.is_weak_model("my-big-model", table) is False
    assert gate.is_weak_model("tier:frontier_review", table) is False
    assert gate.is_weak_model("claude-3", table) is True  # the configured list replaces the defaults
    # tiers resolve as the chat router resolves them: chains followed, a bare name is a model, not a tier
    assert gate.is_weak_model("tier:review", ModelTable({**models, "review": "tier:frontier_review"})) is False
    assert gate.is_weak_model("frontier_review", table) is True


MODES = {"codereview_lakehouse": {"primary": "workers", "corpora": ["workers", "candidates", "job_orders"],
                                  "isolation": "codereview_isolation"},
         "codereview_isolation": {"primary": "workers", "corpora": ["workers"]}}


def test_downgrade_gate(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", modes=MODES) as lk:
        for name in ("workers", "candidates", "job_orders"):
            lk.create_corpus(name, rows=[{"id": 1, "text": f"{name} forklift"}])
        strong = lk.matrix_search("forklift", mode="codereview_lakehouse", model="claude-opus-4", relevance=False)
        assert strong.mode == "codereview_isolation" and strong.corpora == ["workers"]
        assert "strong" in strong.mode_reason and {h.corpus for h in strong.results} == {"workers"}
        weak = lk.matrix_search("forklift", mode="codereview_lakehouse", model="ollama/qwen3:4b", relevance=False)
        assert weak.mode == "codereview_lakehouse" and len({h.corpus for h in weak.results}) == 3
        assert "weak" in weak.mode_reason
        forced = lk.matrix_search("forklift", mode="codereview_lakehouse", model="claude-opus-4",
                                  force_mode="codereview_lakehouse", relevance=False)
        assert forced.mode == "codereview_lakehouse" and "force_mode" in forced.mode_reason
        with pytest.raises(InvalidInput, match="unknown mode 'nope'"):
            lk.matrix_search("forklift", mode="nope")


def test_metadata_filter_gates(mlake):
    # G3.6.A: equality drops every non-IL row and reports how many were excluded
    res = mlake.matrix_search("forklift operator", ["workers"], metadata_filter={"state": "IL"})
    assert {h.id for h in res.results} == {"1", "4"} and res.dropped["metadata_filter_rows"] == 4
    # G3.6.B: a list is OR within the key
    res = mlake.matrix_search("forklift operator", ["workers"], metadata_filter={"state": ["IL", "WI"]})
    assert {h.metadata["state"] for h in res.results} == {"IL", "WI"} and len(res.results) == 4
    # G3.6.C: AND across keys; a row missing a key is dropped; bools match bools only (1 is not true)
    res = mlake.matrix_search("forklift operator", ["workers"], metadata_filter={"state": "IL", "active": True})
    assert [h.id for h in res.results] == ["1"]
    res = mlake.matrix_search("forklift operator", ["workers"], metadata_filter='{"active": true}')
    assert {h.id for h in res.results} == {"1", "2", "6"}
    with pytest.raises(InvalidInput, match="not valid JSON"):
        mlake.matrix_search("forklift operator", ["workers"], metadata_filter='{"state": ')
    with pytest.raises(InvalidInput, match="JSON object"):
        mlake.matrix_search("forklift operator", ["workers"], metadata_filter='["IL"]')


def test_metadata_filter_is_a_prefilter_that_keeps_k(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"id": i, "text": f"item {i}", "metadata": {"bucket": int(i % 50)}} for i in range(3000)]
    vecs = rng.normal(size=(3000, 384)).astype(np.float32)
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False) as lk:
        lk.create_corpus("items", sql="SELECT 1 AS id, 'x' AS text WHERE false")
        lk.add_to_corpus("items", rows, embeddings=vecs)
        # 2 % of rows match: a post-filter of the top 6 would almost always come back empty
        res = lk.matrix_search("anything", ["items"], k_per_corpus=6, metadata_filter={"bucket": 7})
        assert len(res.results) == 6 and all(h.metadata["bucket"] == 7 for h in res.results)
        assert res.dropped["metadata_filter_rows"] == 3000 - 60


def test_sql_matrix_search_and_playbook_lookup(mlake):
    rows = mlake.sql("SELECT rank, corpus, id, source, metadata->>'state' FROM matrix_search('forklift operator', "
                     "corpora := ['workers', 'job_orders'], metadata_filter := {'state': 'IL'}) ORDER BY rank").fetchall()
    assert rows and all(r[4] == "IL" for r in rows) and {r[1] for r in rows} == {"workers", "job_orders"}
    assert mlake.query("SELECT count(*) FROM matrix_search('forklift', corpora := ['workers'], top := 2)").rows == [[2]]
    mlake.record_playbooks([{"query": "forklift operator Joliet", "corpus": "workers", "answer_id": 1}])
    found = mlake.query("SELECT corpus, answer_id, outcome FROM playbook_lookup('forklift operator Joliet', 3)").rows
    assert found == [["workers", "1", 1]]


def test_bulk_record_never_aborts_on_a_bad_entry(mlake):
    """Seed gate G3.7.A."""
    out = mlake.record_playbooks([
        {"query": "forklift in Joliet", "corpus": "workers", "answer_id": 1, "outcome": 1},
        {"query": "", "corpus": "workers", "answer_id": 2},
        {"query": "baker", "corpus": "Bad Name", "answer_id": 5},
        {"query": "baker in Madison", "corpus": "workers", "answer_id": 5, "outcome": "failure",
         "recorded_at": "2025-01-01T00:00:00Z", "tags": ["import"]},
        "not an object",
        {"query": "x", "corpus": "workers", "answer_id": 1, "outcome": 3},
    ])
    assert (out["recorded"], out["failed"]) == (2, 4)
    assert [("id" in r, r["index"]) for r in out["results"]] == [(True, 0), (False, 1), (False, 2), (True, 3),
                                                                  (False, 4), (False, 5)]
    assert out["results"][1]["error"]["code"] == "invalid_playbook"
    assert mlake.sql("SELECT count(*) FROM lake.lh.playbooks").fetchone() == (2,)


def test_recorded_answer_surfaces_on_requery(tmp_path):
    """Seed gate G3.7.B: an answer retrieval misses is injected with source='playbook'."""
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False) as lk:
        lk.create_corpus("workers", rows=PEOPLE)
        query = "forklift operator OSHA-10"
        plain = lk.matrix_search(query, ["workers"], k_per_corpus=2)
        assert "5" not in [h.id for h in plain.results]
        lk.record_playbooks([{"query": query, "corpus": "workers", "answer_id": 5, "outcome": 1}])
        boosted = lk.matrix_search(query, ["workers"], k_per_corpus=2, use_playbook=True)
        hit = next(h for h in boosted.results if h.id == "5")
        assert hit.source == "playbook" and hit.text == "Pastry chef, Madison WI"
        # a negative outcome demotes a retrieved answer
        top = plain.results[0]
        lk.record_playbooks([{"query": query, "corpus": "workers", "answer_id": top.id, "outcome": -1}] * 2)
        demoted = lk.matrix_search(query, ["workers"], k_per_corpus=2, use_playbook=True)
        assert next(h for h in demoted.results if h.id == top.id).score < top.score


def test_playbook_weights_decay_with_age(mlake):
    now = dt.datetime.now(dt.UTC)
    mlake.record_playbooks([
        {"query": "forklift Joliet", "corpus": "workers", "answer_id": 1, "recorded_at": now.isoformat()},
        {"query": "forklift Joliet", "corpus": "workers", "answer_id": 4,
         "recorded_at": (now - dt.timedelta(days=60)).isoformat()},
    ])
    q = mlake.vectors.embedder("hash").embed_one("forklift Joliet")
    w = mlake.playbooks.weights(q)
    assert w[("workers", "4")].weight == pytest.approx(w[("workers", "1")].weight / 4, rel=0.01)  # two half-lives


def test_playbooks_measurably_improve_held_out_paraphrases(tmp_path):
    """Learning measured: after recording outcomes, held-out paraphrases rank the right answer higher."""
    topics = ["forklift", "welding", "nursing", "baking", "trucking", "plumbing", "electrical", "painting",
              "roofing", "cleaning"]
    # the swing team is what worked, which plain similarity cannot know: it ranks it below the two crews
    # (fewer words in common with the questions), never level with them, so `before` does not hang on tie order
    answers = [{"id": f"{t}-{j}", "text": f"{t} {t} {'team' if j == 2 else 'crew'} {j} shift "
                                          f"{['day', 'night', 'swing'][j]} general staffing"}
               for t in topics for j in range(3)]
    right = {t: f"{t}-2" for t in topics}
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False, playbook_threshold=0.5) as lk:
        lk.create_corpus("crews", rows=answers)

        def mrr(use_playbook):
            total = 0.0
            for t in topics:
                res = lk.matrix_search(f"need a {t} crew urgently for tomorrow", ["crews"], k_per_corpus=3, top=3,
                                       use_playbook=use_playbook)
                ids = [h.id for h in res.results]
                total += 1 / (ids.index(right[t]) + 1) if right[t] in ids else 0.0
            return total / len(topics)

        before = mrr(False)
        assert before < 0.5  # the right answer ranks third without playbooks
        lk.record_playbooks([{"query": f"need a {t} crew for tomorrow", "corpus": "crews", "answer_id": right[t]}
                             for t in topics])
        after = mrr(True)
        assert after > before and after == pytest.approx(1.0)


def test_builders(tmp_path):
    text = "# Title\n\nintro para\n\n## Part A\n\n" + "alpha beta. " * 200 + "\n\n## Part B\n\nlast words\n"
    chunks = list(chunk_markdown(text, max_chars=500))
    assert chunks[0] == ("Title", "intro para") and chunks[-1] == ("Title > Part B", "last words")
    assert all(len(c) <= 500 for _, c in chunks) and sum(h == "Title > Part A" for h, _ in chunks) >= 4
    src = 'class A:\n    """An A."""\n    def f(self, x: int) -> int:\n        return x\n\ndef g():\n    pass\n'
    syms = {s["name"]: s for s in python_symbols(src, "pkg.mod")}
    assert set(syms) == {"pkg.mod", "pkg.mod.A", "pkg.mod.A.f", "pkg.mod.g"}
    assert syms["pkg.mod.A.f"]["kind"] == "method" and syms["pkg.mod.A.f"]["signature"] == "def f(self, x: int) -> int"
    assert "An A." in syms["pkg.mod.A"]["text"]
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text(src)
    (tmp_path / "src" / "pkg" / "broken.py").write_text("def (:\n")
    rows = build_rows(tmp_path / "src", "code")
    assert {r["id"] for r in rows} == {"pkg/mod.py:pkg.mod", "pkg/mod.py:pkg.mod.A", "pkg/mod.py:pkg.mod.A.f",
                                       "pkg/mod.py:pkg.mod.g"}
    with pytest.raises(InvalidInput, match="unknown corpus kind"):
        build_rows(tmp_path / "src", "pdf")


def test_cli_corpus_build(tmp_path, capsys):
    from lakehouse.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nforklift safety\n\n# B\n\ncafeteria hours\n")
    root = str(tmp_path / "lake")
    assert main(["corpus", "build", "handbook", "--from", str(tmp_path / "docs"), "--kind", "docs",
                 "--root", root]) == 0
    assert "handbook: 2 docs chunks from 1 files" in capsys.readouterr().out
    with lakehouse.open(root) as lk:
        info = lk.corpora()[0]
        assert (info["kind"], info["builder"], info["source"]["chunks"], info["source"]["files"]) == \
               ("docs", "folder:docs", 2, 1)


def test_injected_playbook_answers_respect_the_metadata_filter(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash", relevance_filter=False) as lk:
        lk.create_corpus("workers", rows=PEOPLE)
        lk.record_playbooks([{"query": "forklift operator OSHA-10", "corpus": "workers", "answer_id": 5},
                             {"query": "forklift operator OSHA-10", "corpus": "elsewhere", "answer_id": "x",
                              "answer_text": "an answer from another corpus"}])
        res = lk.matrix_search("forklift operator OSHA-10", ["workers"], k_per_corpus=2, use_playbook=True,
                               metadata_filter={"state": "IL"})
        assert all(h.metadata.get("state") == "IL" for h in res.results)
        unfiltered = lk.matrix_search("forklift operator OSHA-10", ["workers"], k_per_corpus=2, use_playbook=True)
        assert {("workers", "5"), ("elsewhere", "x")} <= {(h.corpus, h.id) for h in unfiltered.results}


def test_forget_removes_one_source(mlake):
    mlake.record_playbooks([{"query": "forklift", "corpus": "workers", "answer_id": 1, "source": "import"},
                            {"query": "forklift", "corpus": "workers", "answer_id": 4, "source": "api"}])
    assert len(mlake.playbooks.similar(mlake.vectors.embedder("hash").embed_one("forklift"), 5)) == 2
    assert mlake.playbooks.forget("import") == 1
    left = mlake.playbooks.similar(mlake.vectors.embedder("hash").embed_one("forklift"), 5)
    assert [e.answer_id for e, _ in left] == ["4"]

"""RAG (`lake.ask`) and the SQL `chat()` function, against a loopback LLM whose reply echoes the prompt.

One lake for the module (opening a lake and building a corpus costs seconds); each test gets a
fresh `ChatDispatcher` swapped into `lake.llm`, so retries, cooldowns and tiers never leak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from http_server import free_port
from llm_servers import LLMServer, chat_installer, llm_fixture, provider_settings, srv_fixture  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.engine.chat import ChatDispatcher
from lakehouse.engine.rag import build_prompt
from lakehouse.errors import Forbidden, InvalidInput, NotFound, ProviderError, ProviderNotConfigured

QUESTION = "find me a forklift operator with OSHA-10 in IL"
WORKERS = """id,name,role,city,state,available,notes
1,Ann Lee,Forklift Operator,Chicago,IL,true,Forklift operator in Chicago IL with OSHA-10 certification
2,Bob Ray,Forklift Operator,Joliet,IL,false,Forklift operator in Joliet IL with OSHA-10 and five years on reach trucks
3,Cy Moe,Forklift Operator,Milwaukee,WI,true,Forklift operator in Milwaukee WI with OSHA-10
4,Di Fox,Welder,Chicago,IL,true,Welder in Chicago IL with OSHA-30 and MIG experience
5,Ed Kim,Nurse,Springfield,IL,true,Registered nurse in Springfield IL with CPR
6,Flo Ng,Forklift Operator,Peoria,IL,true,Forklift operator in Peoria IL without certifications
7,Gus Tan,Cashier,Austin,TX,false,Cashier in Austin TX with retail experience
8,Hal Orr,Electrician,Dallas,TX,true,Electrician in Dallas TX with OSHA-10
9,Ida Cho,Forklift Operator,Rockford,IL,true,Forklift operator in Rockford IL with OSHA-10 certification too
"""
FORKLIFT_OSHA_IL = {"1", "2", "9"}
MODEL = "ollama/qwen3:4b"


@pytest.fixture(scope="module")
def rlake(tmp_path_factory: pytest.TempPathFactory, llm: LLMServer) -> Iterator[lakehouse.Lake]:
    root = tmp_path_factory.mktemp("rag")
    lake = lakehouse.open(root / "lake", embedder="hash", **provider_settings(llm.url))
    try:
        lake.ingest(WORKERS.encode(), "workers", filename="workers.csv")
        lake.create_corpus("workers", dataset="workers", id="id", text="notes",
                           metadata=["state", "role", "available"], progress=False)
        yield lake
    finally:
        lake.close()


@pytest.fixture
def use_chat(rlake: lakehouse.Lake, llm: LLMServer,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ChatDispatcher]]:
    """use_chat(models={...}, ollama_base=...) -> a dispatcher installed as rlake.llm."""
    with chat_installer(rlake, llm, monkeypatch) as install:
        yield install


def _user_prompt(srv: LLMServer) -> str:
    messages = srv.requests[-1].body["messages"]
    return next(m["content"] for m in messages if m["role"] == "user")


def test_seed_gate_g1_answer_is_grounded(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    out = rlake.ask(QUESTION, k=3, where="state = 'IL'", model=MODEL)

    assert out["answered_by"] == "model" and out["model"] == MODEL and out["provider"] == "ollama"
    assert out["mode"] == "vector" and out["corpora"] == ["workers"] and out["retrieved"] == 3
    assert {c["id"] for c in out["citations"]} == FORKLIFT_OSHA_IL
    assert [c["n"] for c in out["citations"]] == [1, 2, 3]
    for c in out["citations"]:
        assert c["corpus"] == "workers" and "Forklift operator" in c["text"] and "OSHA-10" in c["text"]
        assert " IL " in c["text"] and c["metadata"]["state"] == "IL" and 0 < c["score"] <= 1
        assert c["text"] in out["answer"]  # the rows reached the model, and its answer is built from them
    assert out["citations"][0]["score"] >= out["citations"][-1]["score"]
    prompt = _user_prompt(srv)
    assert prompt.startswith(f"Question: {QUESTION}") and "[1] (workers #" in prompt
    body = srv.requests[-1].body
    assert body["messages"][0]["role"] == "system" and "cite" in body["messages"][0]["content"].lower()
    assert out["retrieval_ms"] > 0 and out["generation_ms"] > 0 and out["note"] is None
    assert out["usage"]["total_tokens"] > 0
    op = rlake.observer.ops[-1]
    assert op.op == "rag.ask" and op.output["mode"] == "vector" and QUESTION not in str(op.to_dict())


def test_seed_gate_g1_with_minilm(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    rlake.create_corpus("workers_ml", dataset="workers", id="id", text="notes", metadata=["state"],
                        embedder="minilm", progress=False)
    try:
        out = rlake.ask(QUESTION, corpora="workers_ml", k=2, where="state = 'IL'", model=MODEL)
        assert out["answered_by"] == "model"
        assert {c["id"] for c in out["citations"]} <= FORKLIFT_OSHA_IL and len(out["citations"]) == 2
        assert all(c["text"] in out["answer"] for c in out["citations"])
        # two corpora now: which one to ask must be said
        with pytest.raises(InvalidInput, match="several corpora") as info:
            rlake.ask(QUESTION)
        assert info.value.code == "corpus_required" and info.value.details["corpora"] == ["workers", "workers_ml"]
    finally:
        rlake.drop_corpus("workers_ml")


def test_only_corpus_is_the_default(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert rlake.ask(QUESTION, k=2, model=MODEL)["corpora"] == ["workers"]
    monkeypatch.setattr(rlake.vectors, "corpora", lambda: [])
    with pytest.raises(InvalidInput, match="no corpora") as info:
        rlake.ask(QUESTION)
    assert info.value.code == "no_corpora"


def test_citations_are_the_ones_the_answer_used(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    srv.reply_fn = lambda messages: "Ida is the best fit [3], then Ann [1, 3]. [7] does not exist."
    out = rlake.ask(QUESTION, k=3, where="state = 'IL'", model=MODEL)
    assert [c["n"] for c in out["citations"]] == [1, 3]

    srv.reply_fn = lambda messages: "Several workers qualify."  # cites nothing: all retrieved rows are evidence
    out = rlake.ask(QUESTION, k=3, where="state = 'IL'", model=MODEL)
    assert [c["n"] for c in out["citations"]] == [1, 2, 3]


def test_one_corpus_gets_matrix_searchs_relevance_filter(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Threshold and margin alike: with a tight margin, one-corpus retrieval keeps what matrix search keeps."""
    from lakehouse.settings import Settings

    monkeypatch.setattr(rlake, "settings", Settings({**rlake.settings.as_dict(), "relevance_margin": 0.03}))
    srv.reply_fn = lambda messages: "Several workers qualify."  # cites nothing: every retrieved row is a citation
    out = rlake.ask(QUESTION, k=9, model=MODEL)
    matrix = rlake.matrix_search(QUESTION, ["workers"], k_per_corpus=9, top=9)
    kept = [h.id for h in matrix.results]
    assert [c["id"] for c in out["citations"]] == kept
    assert 0 < len(kept) < 9 and matrix.dropped["relevance"]  # the margin dropped rows above the threshold
    assert any("below the best hit" in d["reason"] for d in matrix.dropped["relevance"])


def test_nothing_relevant_does_not_ask_the_model(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    out = rlake.ask("quantum chromodynamics lattice gauge theory", model=MODEL)
    assert out["answered_by"] == "none" and out["citations"] == [] and out["retrieved"] == 0
    assert "No relevant rows" in out["answer"] and "relevance threshold" in out["note"]
    assert srv.requests == []
    # a filter that leaves nothing: the same answer, without searching
    out = rlake.ask(QUESTION, where="state = 'ZZ'", model=MODEL)
    assert out["answered_by"] == "none" and srv.requests == []


def test_without_a_model_the_answer_is_extractive_and_fast(rlake: lakehouse.Lake, srv: LLMServer,
                                                           use_chat: Any) -> None:
    out = rlake.ask(QUESTION, k=4)  # no model and no rag/local_fast tier: generation is skipped
    assert out["answered_by"] == "extractive" and out["model"] is None
    assert "generation needs a provider" in out["note"] and "local_fast" in out["note"]
    assert srv.requests == [] and out["generation_ms"] < 50
    assert len(out["citations"]) == 4
    top = out["citations"][0]
    assert out["answer"].startswith(f'Top 3 of 4 retrieved rows for "{QUESTION}"')
    assert f"[1] {top['text']}" in out["answer"] and "1 more retrieved rows" in out["answer"]
    assert rlake.ask(QUESTION, k=4)["answer"] == out["answer"]  # deterministic


def test_configured_tier_is_the_default_model(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    use_chat(models={"local_fast": "ollama/llama3.2:3b", "rag": MODEL})
    out = rlake.ask(QUESTION, k=2)
    assert out["answered_by"] == "model" and out["model"] == MODEL
    use_chat(models={"local_fast": "ollama/llama3.2:3b"})
    assert rlake.ask(QUESTION, k=2)["model"] == "ollama/llama3.2:3b"
    assert [r.body["model"] for r in srv.requests] == ["qwen3:4b", "llama3.2:3b"]


def test_failing_model_falls_back_to_extractive(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    srv.fail(500, {"error": "model exploded"})
    out = rlake.ask(QUESTION, k=2, model=MODEL)
    assert out["answered_by"] == "extractive" and len(out["citations"]) == 2
    assert "HTTP 500" in out["note"] and "model exploded" in out["note"] and MODEL in out["note"]

    out = rlake.ask(QUESTION, k=2, model="kimi/kimi-k2")  # no key: not configured
    assert out["answered_by"] == "extractive" and "KIMI_API_KEY" in out["note"]

    use_chat(ollama_base=f"http://127.0.0.1:{free_port()}")  # the default local Ollama, not running
    out = rlake.ask(QUESTION, k=2, model=MODEL)
    assert out["answered_by"] == "extractive" and "generation with" in out["note"]
    assert out["generation_ms"] < 2000

    with pytest.raises(InvalidInput, match="unknown model tier"):  # a caller's mistake stays an error
        rlake.ask(QUESTION, model="tier:nope")


def test_metadata_filter_is_a_prefilter(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    out = rlake.ask(QUESTION, k=3, metadata_filter={"state": "WI"})
    assert [c["id"] for c in out["citations"]] == ["3"]  # the only WI row, though IL rows score higher
    out = rlake.ask(QUESTION, k=8, metadata_filter={"state": ["IL", "WI"], "role": "Forklift Operator"})
    assert {c["id"] for c in out["citations"]} <= {"1", "2", "3", "6", "9"} and len(out["citations"]) >= 4
    out = rlake.ask(QUESTION, k=8, metadata_filter={"available": False})
    assert {c["id"] for c in out["citations"]} == {"2"}  # 7 (unavailable) is not about the question
    assert rlake.ask(QUESTION, metadata_filter={"available": 0})["retrieved"] == 0  # bools only match bools
    assert rlake.ask(QUESTION, metadata_filter={"nope": 1})["retrieved"] == 0  # missing key: dropped
    out = rlake.ask(QUESTION, k=8, metadata_filter={"role": "Forklift Operator"}, where="available")  # both apply
    # 2 is unavailable, and 6 (no certification) is more than relevance_margin below the best hit
    assert {c["id"] for c in out["citations"]} == {"1", "3", "9"}


def test_bad_arguments(rlake: lakehouse.Lake, use_chat: Any) -> None:
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"k": 0}, InvalidInput, "invalid_k"),
        ({"k": True}, InvalidInput, "invalid_k"),
        ({"corpora": []}, InvalidInput, "invalid_corpora"),
        ({"corpora": "nope"}, NotFound, "corpus_not_found"),
        ({"where": "id IN (SELECT 1)"}, Forbidden, "where_not_allowed"),
        ({"metadata_filter": ["state"]}, InvalidInput, "invalid_metadata_filter"),
        ({"corpora": ["workers", "other"], "where": "true"}, InvalidInput, "where_needs_one_corpus"),
        ({"corpora": ["workers", "other"]}, NotFound, "corpus_not_found"),
        ({"metadata_filter": "{not json"}, InvalidInput, "invalid_metadata_filter"),
        ({"model": ""}, InvalidInput, "invalid_model"),
    ]
    for options, kind, code in cases:
        with pytest.raises(kind) as info:
            rlake.ask(QUESTION, **options)
        assert info.value.code == code, options
    with pytest.raises(InvalidInput, match="question"):
        rlake.ask("  ")


def test_several_corpora_use_matrix_search(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any) -> None:
    rlake.create_corpus("job_c", sql="SELECT 'j1' AS id, 'Job order: a forklift operator with OSHA-10 in IL (Joliet)' "
                        "AS text, 'IL' AS state", metadata=["state"], progress=False)
    try:
        out = rlake.ask(QUESTION, corpora=["workers", "job_c"], k=4, model=MODEL)
        assert out["mode"] == "matrix" and out["corpora"] == ["workers", "job_c"] and out["answered_by"] == "model"
        assert {c["corpus"] for c in out["citations"]} == {"workers", "job_c"}  # attributed to their corpus
        assert all(c["text"] in out["answer"] for c in out["citations"])
        assert "(job_c #j1) Job order: a forklift operator" in _user_prompt(srv)
        out = rlake.ask(QUESTION, corpora=["workers", "job_c"], metadata_filter={"state": "WI"})
        assert [(c["corpus"], c["id"]) for c in out["citations"]] == [("workers", "3")]
        with pytest.raises(InvalidInput) as info:
            rlake.ask(QUESTION, corpora=["workers", "job_c"], where="state = 'IL'")
        assert info.value.code == "where_needs_one_corpus"
        assert rlake.ask(QUESTION, corpora=["workers", "workers"], k=1)["mode"] == "vector"  # repeats collapse
    finally:
        rlake.drop_corpus("job_c")


def test_prompt_numbers_one_line_per_chunk() -> None:
    chunks = [{"corpus": "docs", "id": "a", "text": "line one\nline two", "score": 0.9, "metadata": {}},
              {"corpus": "docs", "id": "b", "text": "x" * 5000, "score": 0.8, "metadata": {}}]
    prompt = build_prompt("why?", chunks)
    lines = prompt.splitlines()
    assert "[1] (docs #a) line one line two" in lines
    long = next(line for line in lines if line.startswith("[2]"))
    assert len(long) < 1300 and long.endswith("…")


# -- SQL chat() -------------------------------------------------------------------------------


JOB_ORDERS = "id,notes\n1,Need two forklift drivers in Joliet\n2,Night shift welders\n3,\n"


@pytest.fixture
def job_orders(rlake: lakehouse.Lake) -> Iterator[None]:
    rlake.ingest(JOB_ORDERS.encode(), "job_orders", filename="job_orders.csv", mode="replace")
    yield


def test_sql_chat(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any, job_orders: None) -> None:
    use_chat(models={"local_fast": MODEL})
    rows = rlake.sql("SELECT id, chat('tier:local_fast', 'Summarise: ' || notes) AS summary "
                     "FROM job_orders ORDER BY id LIMIT 5").fetchall()
    assert rows == [(1, "echo: Summarise: Need two forklift drivers in Joliet"),
                    (2, "echo: Summarise: Night shift welders"), (3, None)]  # NULL notes: no call
    assert len(srv.requests) == 2 and all(r.body["model"] == "qwen3:4b" for r in srv.requests)
    # the read-only query path has it too, and a cursor of the user's connection
    assert rlake.query("SELECT chat('tier:local_fast', 'hi') AS a").rows == [["echo: hi"]]
    assert rlake.cursor().cursor().sql("SELECT chat(?, 'yo')", params=[MODEL]).fetchone() == ("echo: yo",)
    # side effects: each row is its own call, never folded into one
    rlake.sql("SELECT chat('tier:local_fast', 'same') FROM range(3)").fetchall()
    assert len(srv.requests) == 7


def test_sql_chat_errors_are_clear(rlake: lakehouse.Lake, srv: LLMServer, use_chat: Any, job_orders: None) -> None:
    srv.fail(500, {"error": "upstream melted"})
    with pytest.raises(ProviderError, match="HTTP 500.*upstream melted") as info:
        rlake.query(f"SELECT id, chat('{MODEL}', notes) FROM job_orders")
    assert info.value.code == "provider_error" and info.value.status == 502
    with pytest.raises(ProviderNotConfigured, match="OPENROUTER_API_KEY") as nf:
        rlake.query("SELECT chat('openrouter/anthropic/claude-sonnet-4', 'x')")
    assert nf.value.code == "provider_not_configured" and nf.value.status == 503  # its own class, through DuckDB
    with pytest.raises(duckdb.Error, match="unknown model tier"):  # lake.sql: DuckDB's error, message intact
        rlake.sql("SELECT chat('tier:nope', 'x')").fetchall()


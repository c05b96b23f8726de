"""Every operation of the catalog, through every surface that exposes it (Python, SQL, HTTP, CLI, and MCP, where
every op is a tool): each call lands exactly one ObservedOp of that operation, with the right origin; and no
surface reaches the engine except through the catalog."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_server import LiveServer
from llm_servers import LLMServer, provider_settings
from mcp_client import call, http_target

import lakehouse
from lakehouse.cli import build_parser
from lakehouse.cli import main as cli_main
from lakehouse.engine.ops import CATALOG
from lakehouse.http import create_app

ROOT = Path(__file__).parents[1]
CSV = b"id,name,role,state\n1,Ann,Forklift Operator,IL\n2,Bob,Pastry Chef,WI\n3,Cy,Welder,IL\n"
JOBS = b"id,client,role,city,state,headcount,required_certifications,status\n1,Acme,Welder,Joliet,IL,2,[OSHA-10],open\n"


@dataclasses.dataclass
class World:
    lake: lakehouse.Lake
    http: httpx.Client
    root: Path
    imports: Path
    llm: LLMServer

    def cli(self, *argv: str) -> None:
        code = cli_main([*argv, "--root", str(self.root)])
        assert code == 0, argv

    def mcp(self, tool: str, arguments: dict[str, Any] | None = None) -> None:
        """One tool call with the SDK's client, over streamable HTTP to the app's /mcp."""
        result = call(http_target(str(self.http.base_url).rstrip("/")), tool, arguments)
        assert not result.is_error, result.content[0].text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("surfaces")
    imports = base / "imports"
    (imports / "docs").mkdir(parents=True)
    (imports / "docs" / "guide.md").write_text("# Forklifts\n\nForklift operators need OSHA-10.\n")
    (imports / "people.csv").write_bytes(CSV)
    (imports / "evidence.jsonl").write_text(json.dumps(EVIDENCE) + "\n")
    (imports / "truth.toml").write_text(TRUTH)
    (imports / "steps.json").write_text(json.dumps(STEPS))
    (imports / "rules.json").write_text(json.dumps([{**RULE, "dataset": "r_cli"}]))
    with LLMServer() as llm:
        lake = lakehouse.open(base / "lake", embedder="hash", import_dirs=[str(imports)], rebuild_interval_s=0,
                               **provider_settings(llm.url))
        try:
            lake.ingest(CSV, "people", filename="people.csv")
            lake.create_corpus("people_c", dataset="people", text=["name", "role"], metadata=["state"])
            (lake.root / "auditor").mkdir()
            (lake.root / "auditor" / "audit_baselines.jsonl").write_text("".join(
                json.dumps({"ts": f"2026-01-0{i}T00:00:00Z", "head": f"c{i}", "counts": {
                    "by_severity": {"warn": 2}, "by_check": {"todo": 2}}}) + "\n" for i in (1, 2)))
            with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=30) as http:
                yield World(lake, http, lake.root, imports, llm)
        finally:
            lake.close()


EVIDENCE = {"kind": "rag_answer", "query": "who drives a forklift?", "answer": "Ann does [1].", "retrieved_ids": ["1"],
            "citations": ["1"], "model": "m", "outcome": 1}
TRUTH = '[[rule]]\nname = "positive_ids"\ndataset = "people"\nassert = "id > 0"\n'
STEPS = [{"op": "dataset.list", "input": {}}]
RULE = {"name": "id_present", "kind": "not_null", "params": {"column": "id"}, "severity": "warn"}
A_IDS, B_ALL = {"ids_sql": "SELECT id FROM people"}, {"since": "2000-01-01T00:00:00Z"}
DRIFT_SQL = ("SELECT * FROM embedding_drift('people_c', {'ids_sql': 'SELECT id FROM people'}, "
             "{'since': '2000-01-01T00:00:00Z'}, tests := ['ks'])")


def _pathway(w: World) -> str:
    return w.lake.ops.call("pathways.record", text="list the datasets", steps=STEPS)["id"]


def _delta(n: int) -> bytes:
    return f"id,name,role,state\n{n},X{n},Welder,OH\n".encode()


TINY = "name: tiny\nnodes: [{id: a, mode: dataset.list}]\n"


def _run_id(w: World) -> str:
    """A run to look up (through the Python surface: it records a workflow.run, not a workflow.get)."""
    return w.lake.ops.call("workflow.run", workflow=TINY)["run_id"]


def _tiny(w: World) -> str:
    (w.root / "workflows").mkdir(exist_ok=True)
    (w.root / "workflows" / "tiny.yaml").write_text(TINY)
    return "tiny"


def _repo(w: World) -> str:
    """A git repository of one commit (an audit of HEAD..HEAD asks no reviewer)."""
    path = w.imports / "repo"
    if not path.exists():
        path.mkdir()
        for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
            (path / "a.py").write_text("x = 1\n")
            subprocess.run(["git", "-C", str(path), "-c", "user.email=t@t", "-c", "user.name=t", *args], check=True)
    return str(path)


def _extractor(w: World) -> str:
    w.llm.model_replies["extractor"] = lambda messages: json.dumps(
        {"facts": [{"claim": "Ann drives forklifts.", "sources": ["1"]}], "entities": [], "relations": []})
    return "ollama/extractor"


ROWS = [{"id": "1", "text": "Ann drives forklifts."}]
FACTS = [{"n": 1, "claim": "Ann drives forklifts.", "sources": ["1"]}]
GROUPS = [{"topic": "Ann", "facts": FACTS}]
CHUNKS = [{"id": "1", "file": "a.py", "text": "forklift"}]
VERDICT = {"verdict": "approve", "reason": "nothing", "findings": [], "counts": {}}

# op -> surface -> call. Calls that change the lake use their own names, so the order of the table is free.
Call = Callable[[World], Any]
CALLS: dict[str, dict[str, Call]] = {
    "sql.query": {
        "python": lambda w: w.lake.query("SELECT count(*) FROM people"),
        "http": lambda w: w.http.post("/sql", json={"sql": "SELECT 1"}),
        "cli": lambda w: w.cli("sql", "SELECT 1"),
        "mcp": lambda w: w.mcp("sql_query", {"sql": "SELECT 1"}),
    },
    "dataset.ingest": {
        "python": lambda w: w.lake.ingest(CSV, "ing_py", filename="p.csv"),
        "http": lambda w: w.http.post("/ingest", params={"dataset": "ing_http"}, files={"file": ("p.csv", CSV)}),
        "cli": lambda w: w.cli("ingest", str(w.imports / "people.csv"), "--dataset", "ing_cli"),
        "mcp": lambda w: w.mcp("ingest_path", {"source": "people.csv", "dataset": "ing_mcp"}),
    },
    "dataset.list": {
        "python": lambda w: w.lake.datasets(),
        "sql": lambda w: w.lake.sql("SELECT * FROM lakehouse_datasets()").fetchall(),
        "http": lambda w: w.http.get("/datasets"),
        "cli": lambda w: w.cli("datasets"),
        "mcp": lambda w: w.mcp("list_datasets"),
    },
    "dataset.describe": {
        "python": lambda w: w.lake.dataset("people"),
        "sql": lambda w: w.lake.sql("SELECT lakehouse_dataset('people')").fetchall(),
        "http": lambda w: w.http.get("/datasets/people"),
        "cli": lambda w: w.cli("dataset", "people"),
        "mcp": lambda w: w.mcp("describe_dataset", {"name": "people"}),
    },
    "dataset.drop": {
        "python": lambda w: (w.lake.ingest(CSV, "drop_py", filename="p.csv"), w.lake.drop_dataset("drop_py")),
        "http": lambda w: (w.lake.ingest(CSV, "drop_http", filename="p.csv"), w.http.delete("/datasets/drop_http")),
        "cli": lambda w: (w.lake.ingest(CSV, "drop_cli", filename="p.csv"), w.cli("drop", "drop_cli")),
        "mcp": lambda w: (w.lake.ingest(CSV, "drop_mcp", filename="p.csv"),
                          w.mcp("dataset_drop", {"name": "drop_mcp"})),
    },
    "dataset.compact": {
        "python": lambda w: (w.lake.ingest(_delta(7), "people", mode="delta", key="id"), w.lake.compact("people")),
        "http": lambda w: (w.lake.ingest(_delta(8), "people", mode="delta", key="id"),
                           w.http.post("/datasets/people/compact")),
        "cli": lambda w: (w.lake.ingest(_delta(9), "people", mode="delta", key="id"), w.cli("compact", "people")),
        "mcp": lambda w: (w.lake.ingest(_delta(10), "people", mode="delta", key="id"),
                          w.mcp("dataset_compact", {"name": "people"})),
    },
    "corpus.create": {
        "python": lambda w: w.lake.create_corpus("c_py", dataset="people", text="name"),
        "http": lambda w: w.http.post("/v1/corpora", json={"name": "c_http", "dataset": "people", "text": "name"}),
        "cli": lambda w: w.cli("corpus", "create", "c_cli", "--dataset", "people", "--text", "name"),
        "mcp": lambda w: w.mcp("corpus_create", {"name": "c_mcp", "dataset": "people", "text": "name"}),
    },
    "corpus.build": {
        "python": lambda w: w.lake.build_corpus("b_py", w.imports / "docs", "docs"),
        "http": lambda w: w.http.post("/v1/corpora/build", json={"name": "b_http", "folder": "docs", "kind": "docs"}),
        "cli": lambda w: w.cli("corpus", "build", "b_cli", "--from", str(w.imports / "docs"), "--kind", "docs"),
        "mcp": lambda w: w.mcp("corpus_build", {"name": "b_mcp", "folder": "docs", "kind": "docs"}),
    },
    "corpus.add": {
        "python": lambda w: w.lake.add_to_corpus("people_c", [{"id": 90, "text": "crane operator"}]),
        "http": lambda w: w.http.post("/v1/corpora/people_c/add", json={"rows": [{"id": 91, "text": "baker"}]}),
        "mcp": lambda w: w.mcp("corpus_add", {"name": "people_c", "rows": [{"id": 92, "text": "welder"}]}),
    },
    "corpus.list": {
        "python": lambda w: w.lake.corpora(),
        "sql": lambda w: w.lake.sql("SELECT * FROM lakehouse_corpora()").fetchall(),
        "http": lambda w: w.http.get("/v1/corpora"),
        "cli": lambda w: w.cli("corpus", "list"),
        "mcp": lambda w: w.mcp("corpus_list"),
    },
    "corpus.describe": {
        "python": lambda w: w.lake.corpus("people_c"),
        "http": lambda w: w.http.get("/v1/corpora/people_c"),
        "mcp": lambda w: w.mcp("corpus_describe", {"name": "people_c"}),
    },
    "corpus.sync": {
        "python": lambda w: w.lake.sync_corpus("people_c"),
        "http": lambda w: w.http.post("/v1/corpora/people_c/sync"),
        "cli": lambda w: w.cli("corpus", "sync", "people_c"),
        "mcp": lambda w: w.mcp("corpus_sync", {"name": "people_c"}),
    },
    "corpus.rebuild": {
        "python": lambda w: w.lake.rebuild_index("people_c"),
        "http": lambda w: w.http.post("/v1/corpora/people_c/rebuild"),
        "cli": lambda w: w.cli("corpus", "rebuild", "people_c"),
        "mcp": lambda w: w.mcp("corpus_rebuild", {"name": "people_c"}),
    },
    "corpus.rollback": {
        "python": lambda w: (w.lake.rebuild_index("people_c"), w.lake.rollback_index("people_c")),
        "http": lambda w: (w.lake.rebuild_index("people_c"), w.http.post("/v1/corpora/people_c/rollback")),
        "cli": lambda w: (w.lake.rebuild_index("people_c"), w.cli("corpus", "rollback", "people_c")),
        "mcp": lambda w: (w.lake.rebuild_index("people_c"), w.mcp("corpus_rollback", {"name": "people_c"})),
    },
    "corpus.drop": {
        "python": lambda w: (w.lake.create_corpus("d_py", rows=[{"id": 1, "text": "a"}]), w.lake.drop_corpus("d_py")),
        "http": lambda w: (w.lake.create_corpus("d_http", rows=[{"id": 1, "text": "a"}]),
                           w.http.delete("/v1/corpora/d_http")),
        "cli": lambda w: (w.lake.create_corpus("d_cli", rows=[{"id": 1, "text": "a"}]), w.cli("corpus", "drop", "d_cli")),
        "mcp": lambda w: (w.lake.create_corpus("d_mcp", rows=[{"id": 1, "text": "a"}]),
                          w.mcp("corpus_drop", {"name": "d_mcp"})),
    },
    "embed": {
        "python": lambda w: w.lake.embed(["forklift"]),
        "sql": lambda w: w.lake.sql("SELECT embed('forklift')").fetchall(),
        "http": lambda w: w.http.post("/v1/embed", json={"texts": ["forklift"]}),
        "mcp": lambda w: w.mcp("embed", {"texts": ["forklift"]}),
    },
    "vectors.search": {
        "python": lambda w: w.lake.vector_search("people_c", "forklift", 2),
        "sql": lambda w: w.lake.sql("SELECT * FROM vector_search('people_c', 'forklift', 2)").fetchall(),
        "http": lambda w: w.http.post("/vectors/search", json={"corpus": "people_c", "query": "forklift", "k": 2}),
        "cli": lambda w: w.cli("search", "people_c", "forklift", "-k", "2"),
        "mcp": lambda w: w.mcp("vector_search", {"corpus": "people_c", "query": "forklift", "k": 2}),
    },
    "vectors.hybrid": {
        "python": lambda w: w.lake.hybrid_where("people_c", "forklift", 2, where="state = 'IL'"),
        "http": lambda w: w.http.post("/vectors/hybrid", json={"corpus": "people_c", "query": "forklift",
                                                               "where": "state = 'IL'"}),
        "mcp": lambda w: w.mcp("vectors_hybrid", {"corpus": "people_c", "query": "forklift", "where": "state = 'IL'"}),
    },
    "text.search": {
        "python": lambda w: w.lake.text_search("people_c", "forklift", 2),
        "sql": lambda w: w.lake.sql("SELECT * FROM text_search('people_c', 'forklift', 2)").fetchall(),
        "http": lambda w: w.http.post("/v1/text/search", json={"corpus": "people_c", "query": "forklift"}),
        "mcp": lambda w: w.mcp("text_search", {"corpus": "people_c", "query": "forklift"}),
    },
    "hybrid.search": {
        "python": lambda w: w.lake.hybrid_search("people_c", "forklift", 2),
        "sql": lambda w: w.lake.sql("SELECT * FROM hybrid_search('people_c', 'forklift', 2)").fetchall(),
        "http": lambda w: w.http.post("/v1/hybrid/search", json={"corpus": "people_c", "query": "forklift"}),
        "mcp": lambda w: w.mcp("hybrid_search", {"corpus": "people_c", "query": "forklift"}),
    },
    "matrix.search": {
        "python": lambda w: w.lake.matrix_search("forklift", ["people_c"]),
        "sql": lambda w: w.lake.sql("SELECT * FROM matrix_search('forklift', corpora := ['people_c'])").fetchall(),
        "http": lambda w: w.http.post("/v1/matrix/search", json={"query": "forklift", "corpora": ["people_c"]}),
        "cli": lambda w: w.cli("matrix", "forklift", "--corpora", "people_c"),
        "mcp": lambda w: w.mcp("matrix_search", {"query": "forklift", "corpora": ["people_c"]}),
    },
    "matrix.relevance": {
        "python": lambda w: w.lake.relevance("forklift", [{"id": 1, "text": "forklift operator"}]),
        "http": lambda w: w.http.post("/v1/matrix/relevance", json={"query": "forklift",
                                                                    "candidates": [{"id": 1, "text": "forklift"}]}),
        "mcp": lambda w: w.mcp("matrix_relevance", {"query": "forklift", "candidates": [{"id": 1, "text": "forklift"}]}),
    },
    "playbook.record": {
        "python": lambda w: w.lake.record_playbooks([{"query": "q", "corpus": "people_c", "answer_id": 1}]),
        "http": lambda w: w.http.post("/v1/matrix/playbooks/bulk",
                                      json={"entries": [{"query": "q", "corpus": "people_c", "answer_id": 2}]}),
        "mcp": lambda w: w.mcp("record_playbook", {"entries": [{"query": "q", "corpus": "people_c", "answer_id": 3}]}),
    },
    "playbook.lookup": {
        "python": lambda w: w.lake.playbook_lookup("q", 3),
        "sql": lambda w: w.lake.sql("SELECT * FROM playbook_lookup('q', 3)").fetchall(),
        "http": lambda w: w.http.get("/v1/matrix/playbooks", params={"query": "q", "k": "3"}),
        "mcp": lambda w: w.mcp("playbook_lookup", {"query": "q", "k": 3}),
    },
    "chat": {
        "python": lambda w: w.lake.chat("ollama/m", prompt="hi"),
        "sql": lambda w: w.lake.sql("SELECT chat('ollama/m', 'hi')").fetchall(),
        "http": lambda w: w.http.post("/v1/chat", json={"model": "ollama/m", "prompt": "hi"}),
        "mcp": lambda w: w.mcp("chat", {"model": "ollama/m", "prompt": "hi"}),
    },
    "chat.models": {
        "python": lambda w: w.lake.chat_models(),
        "http": lambda w: w.http.get("/v1/models"),
        "mcp": lambda w: w.mcp("chat_models"),
    },
    "rag.ask": {
        "python": lambda w: w.lake.ask("who drives a forklift", corpora="people_c"),
        "http": lambda w: w.http.post("/rag", json={"question": "who drives a forklift", "corpora": "people_c"}),
        "cli": lambda w: w.cli("ask", "who drives a forklift", "--corpora", "people_c"),
        "mcp": lambda w: w.mcp("ask", {"question": "who drives a forklift", "corpora": "people_c"}),
    },
    "observer.ops": {
        "python": lambda w: w.lake.observed_ops(limit=5),
        "http": lambda w: w.http.get("/v1/observer/ops", params={"limit": "5"}),
        "cli": lambda w: w.cli("ops", "tail", "--limit", "5"),
        "mcp": lambda w: w.mcp("observer_ops", {"limit": 5}),
    },
    "observer.stats": {
        "python": lambda w: w.lake.op_stats("1h"),
        "http": lambda w: w.http.get("/v1/observer/stats", params={"window": "1h"}),
        "cli": lambda w: w.cli("ops", "stats"),
        "mcp": lambda w: w.mcp("observer_stats", {"window": "1h"}),
    },
    "storage.errors": {
        "python": lambda w: w.lake.storage_errors(),
        "http": lambda w: w.http.get("/storage/errors"),
        "mcp": lambda w: w.mcp("storage_errors"),
    },
    "journal": {
        "python": lambda w: w.lake.journal(limit=5),
        "sql": lambda w: w.lake.sql("SELECT * FROM journal(\"limit\" := 5)").fetchall(),
        "http": lambda w: w.http.get("/v1/journal", params={"limit": "5"}),
        "cli": lambda w: w.cli("journal", "--limit", "5"),
        "mcp": lambda w: w.mcp("journal", {"limit": 5}),
    },
    "dataset.changes": {
        "python": lambda w: w.lake.changes("people", 0),
        "sql": lambda w: w.lake.sql("SELECT * FROM dataset_changes('people', 0)").fetchall(),
        "http": lambda w: w.http.get("/v1/datasets/people/changes", params={"since_snapshot": "0"}),
        "mcp": lambda w: w.mcp("dataset_changes", {"dataset": "people", "since_snapshot": 0}),
    },
    "storage.drain": {
        "python": lambda w: w.lake.drain_storage(),
        "http": lambda w: w.http.post("/storage/drain"),
        "cli": lambda w: w.cli("storage", "drain"),
        "mcp": lambda w: w.mcp("storage_drain"),
    },
    "hnsw.trials": {
        "python": lambda w: w.lake.hnsw_trials("people_c"),
        "http": lambda w: w.http.get("/hnsw/trials", params={"corpus": "people_c"}),
        "mcp": lambda w: w.mcp("hnsw_trials", {"corpus": "people_c"}),
    },
    "dataset.rows": {
        "python": lambda w: w.lake.ops.call("dataset.rows", name="people", limit=2),
        "mcp": lambda w: w.mcp("dataset_rows", {"name": "people", "limit": 2}),
    },
    "corpus.rows": {
        "python": lambda w: w.lake.ops.call("corpus.rows", name="people_c", limit=2),
        "mcp": lambda w: w.mcp("corpus_rows", {"name": "people_c", "limit": 2}),
    },
    "staffing.job_orders": {
        "python": lambda w: (w.lake.ingest(JOBS, "job_orders", mode="replace", filename="j.csv"),
                             w.lake.ops.call("staffing.job_orders", corpora=["people_c"])),
        "mcp": lambda w: (w.lake.ingest(JOBS, "job_orders", mode="replace", filename="j.csv"),
                          w.mcp("staffing_job_orders", {"corpora": ["people_c"]})),
    },
    "staffing.fill_probability": {
        "python": lambda w: (w.lake.ingest(JOBS, "job_orders", mode="replace", filename="j.csv"),
                             w.lake.ops.call("staffing.fill_probability", job_order_ids=[1], corpora=["people_c"])),
        "mcp": lambda w: (w.lake.ingest(JOBS, "job_orders", mode="replace", filename="j.csv"),
                          w.mcp("staffing_fill_probability", {"job_order_ids": [1], "corpora": ["people_c"]})),
    },
    "drift.scorer": {
        "python": lambda w: w.lake.ops.call("drift.scorer"),
        "sql": lambda w: w.lake.sql("SELECT * FROM scorer_drift()").fetchall(),
        "http": lambda w: w.http.post("/v1/drift/scorer"),
        "cli": lambda w: w.cli("drift", "scorer"),
        "mcp": lambda w: w.mcp("drift_scorer"),
    },
    "drift.playbooks": {
        "python": lambda w: w.lake.ops.call("drift.playbooks", k=3),
        "sql": lambda w: w.lake.sql("SELECT * FROM playbook_drift(k := 3)").fetchall(),
        "http": lambda w: w.http.post("/v1/drift/playbooks", json={"k": 3}),
        "cli": lambda w: w.cli("drift", "playbooks", "-k", "3"),
        "mcp": lambda w: w.mcp("drift_playbooks", {"k": 3}),
    },
    "drift.embeddings": {
        "python": lambda w: w.lake.ops.call("drift.embeddings", corpus="people_c", a=A_IDS, b=B_ALL, tests=["ks"]),
        "sql": lambda w: w.lake.sql(DRIFT_SQL).fetchall(),
        "http": lambda w: w.http.post("/v1/drift/embeddings", json={"corpus": "people_c", "a": A_IDS, "b": B_ALL,
                                                                    "tests": ["ks"]}),
        "cli": lambda w: w.cli("drift", "embeddings", "people_c", "--a", json.dumps(A_IDS), "--b", json.dumps(B_ALL),
                               "--tests", "ks"),
        "mcp": lambda w: w.mcp("drift_embeddings", {"corpus": "people_c", "a": A_IDS, "b": B_ALL, "tests": ["ks"]}),
    },
    "drift.audit": {
        "python": lambda w: w.lake.ops.call("drift.audit", previous=1),
        "http": lambda w: w.http.post("/v1/drift/audit", json={"previous": 1}),
        "cli": lambda w: w.cli("drift", "audit", "--previous", "1"),
        "mcp": lambda w: w.mcp("drift_audit", {"previous": 1}),
    },
    "distill.collect": {
        "python": lambda w: w.lake.ops.call("distill.collect", records=[EVIDENCE]),
        "http": lambda w: w.http.post("/v1/distill/collect", json={"sources": ["playbooks"]}),
        "cli": lambda w: w.cli("distill", "collect", "--records", str(w.imports / "evidence.jsonl")),
        "mcp": lambda w: w.mcp("distill_collect", {"sources": ["workflows"]}),
    },
    "distillation.score": {
        "python": lambda w: w.lake.ops.call("distillation.score", records=[EVIDENCE]),
        "http": lambda w: w.http.post("/v1/distill/score", json={"records": [EVIDENCE]}),
        "cli": lambda w: w.cli("distill", "score", "--file", str(w.imports / "evidence.jsonl")),
        "mcp": lambda w: w.mcp("distillation_score", {"records": [EVIDENCE]}),
    },
    "distill.export": {
        "python": lambda w: w.lake.ops.call("distill.export", out=str(w.root.parent / "sft_py.jsonl")),
        "http": lambda w: w.http.post("/v1/distill/export", json={"out": "sft_http.jsonl"}),
        "cli": lambda w: w.cli("distill", "export", "--out", str(w.root.parent / "sft_cli.jsonl")),
        "mcp": lambda w: w.mcp("distill_export", {"out": "sft_mcp.jsonl"}),
    },
    "pathways.record": {
        "python": lambda w: w.lake.ops.call("pathways.record", text="datasets please", steps=STEPS),
        "http": lambda w: w.http.post("/v1/pathways", json={"text": "datasets please", "steps": STEPS}),
        "cli": lambda w: w.cli("pathways", "record", "datasets please", "--steps", str(w.imports / "steps.json")),
        "mcp": lambda w: w.mcp("pathways_record", {"text": "datasets please", "steps": STEPS}),
    },
    "pathways.lookup": {
        "python": lambda w: w.lake.ops.call("pathways.lookup", text="datasets"),
        "http": lambda w: w.http.post("/v1/pathways/lookup", json={"text": "datasets"}),
        "cli": lambda w: w.cli("pathways", "lookup", "datasets"),
        "mcp": lambda w: w.mcp("pathways_lookup", {"text": "datasets"}),
    },
    "pathways.replay": {
        "python": lambda w: w.lake.ops.call("pathways.replay", id=_pathway(w)),
        "http": lambda w: w.http.post(f"/v1/pathways/{_pathway(w)}/replay"),
        "cli": lambda w: w.cli("pathways", "replay", _pathway(w)),
        "mcp": lambda w: w.mcp("pathways_replay", {"id": _pathway(w)}),
    },
    "pathways.fingerprint": {
        "python": lambda w: w.lake.ops.call("pathways.fingerprint", text="forklift"),
        "http": lambda w: w.http.post("/v1/pathways/fingerprint", json={"text": "forklift"}),
        "cli": lambda w: w.cli("pathways", "fingerprint", "forklift"),
        "mcp": lambda w: w.mcp("pathways_fingerprint", {"text": "forklift"}),
    },
    "rules.put": {
        "python": lambda w: w.lake.ops.call("rules.put", rules=[{**RULE, "dataset": "r_py"}]),
        "http": lambda w: w.http.post("/v1/rules", json={"rules": [{**RULE, "dataset": "r_http"}]}),
        "cli": lambda w: w.cli("rules", "put", str(w.imports / "rules.json")),
        "mcp": lambda w: w.mcp("rules_put", {"rules": [{**RULE, "dataset": "r_mcp"}]}),
    },
    "rules.list": {
        "python": lambda w: w.lake.ops.call("rules.list"),
        "http": lambda w: w.http.get("/v1/rules", params={"dataset": "people"}),
        "cli": lambda w: w.cli("rules", "list"),
        "mcp": lambda w: w.mcp("rules_list", {"dataset": "people"}),
    },
    "rules.delete": {
        "python": lambda w: (w.lake.ops.call("rules.put", rules=[{**RULE, "dataset": "d_py"}]),
                             w.lake.ops.call("rules.delete", dataset="d_py", name=RULE["name"])),
        "http": lambda w: (w.lake.ops.call("rules.put", rules=[{**RULE, "dataset": "d_http"}]),
                           w.http.delete(f"/v1/rules/d_http/{RULE['name']}")),
        "cli": lambda w: (w.lake.ops.call("rules.put", rules=[{**RULE, "dataset": "d_cli"}]),
                          w.cli("rules", "delete", "d_cli", RULE["name"])),
        "mcp": lambda w: (w.lake.ops.call("rules.put", rules=[{**RULE, "dataset": "d_mcp"}]),
                          w.mcp("rules_delete", {"dataset": "d_mcp", "name": RULE["name"]})),
    },
    "rules.check": {
        "python": lambda w: w.lake.ops.call("rules.check", dataset="people"),
        "http": lambda w: w.http.post("/v1/rules/people/check"),
        "cli": lambda w: w.cli("rules", "check", "people"),
        "mcp": lambda w: w.mcp("rules_check", {"dataset": "people"}),
    },
    "truth.check": {
        "python": lambda w: w.lake.ops.call("truth.check", rules=TRUTH),
        "sql": lambda w: w.lake.sql("SELECT * FROM truth_check(?)", [TRUTH]).fetchall(),
        "http": lambda w: w.http.post("/v1/truth/check", json={"rules": TRUTH}),
        "cli": lambda w: w.cli("truth", "check", str(w.imports / "truth.toml")),
        "mcp": lambda w: w.mcp("truth_check", {"rules": TRUTH}),
    },
    "workflow.run": {
        "python": lambda w: w.lake.ops.call("workflow.run", workflow=TINY),
        "http": lambda w: w.http.post("/v1/observer/workflow/run", json={"workflow": TINY}),
        "cli": lambda w: w.cli("workflow", "run", _tiny(w)),
        "mcp": lambda w: w.mcp("workflow_run", {"workflow": TINY}),
    },
    "workflow.list": {
        "python": lambda w: w.lake.ops.call("workflow.list"),
        "http": lambda w: w.http.get("/v1/observer/workflow/list"),
        "cli": lambda w: w.cli("workflow", "list"),
        "mcp": lambda w: w.mcp("workflow_list"),
    },
    "workflow.get": {
        "python": lambda w: w.lake.ops.call("workflow.get", run_id=_run_id(w)),
        "http": lambda w: w.http.get(f"/v1/observer/workflow/runs/{_run_id(w)}"),
        "cli": lambda w: w.cli("workflow", "get", _run_id(w)),
        "mcp": lambda w: w.mcp("workflow_get", {"run_id": _run_id(w)}),
    },
    "audit.diff": {
        "python": lambda w: w.lake.ops.call("audit.diff", repo=_repo(w), base="HEAD"),
        "mcp": lambda w: w.mcp("audit_diff", {"repo": _repo(w), "base": "HEAD"}),
    },
    "scrum.chunks": {
        "python": lambda w: w.lake.ops.call("scrum.chunks", folder=str(w.imports / "docs"), corpus="ch_py"),
        "mcp": lambda w: w.mcp("scrum_chunks", {"folder": "docs", "corpus": "ch_mcp"}),
    },
    "audit.context": {
        "python": lambda w: w.lake.ops.call("audit.context", corpora=["people_c"], chunks=CHUNKS),
        "mcp": lambda w: w.mcp("audit_context", {"corpora": ["people_c"], "chunks": CHUNKS}),
    },
    "audit.review": {
        "python": lambda w: w.lake.ops.call("audit.review", chunks=[], reviewers=["ollama/m"]),
        "mcp": lambda w: w.mcp("audit_review", {"chunks": [], "reviewers": ["ollama/m"]}),
    },
    "scrum.review": {
        "python": lambda w: w.lake.ops.call("scrum.review", chunks=[], ladder=["ollama/m"]),
        "mcp": lambda w: w.mcp("scrum_review", {"chunks": [], "ladder": ["ollama/m"]}),
    },
    "audit.verdict": {
        "python": lambda w: w.lake.ops.call("audit.verdict", reviewers=[]),
        "mcp": lambda w: w.mcp("audit_verdict", {"reviewers": []}),
    },
    "audit.record": {
        "python": lambda w: w.lake.ops.call("audit.record", label="py", kind="scrum", verdict=VERDICT),
        "mcp": lambda w: w.mcp("audit_record", {"label": "mcp", "kind": "scrum", "verdict": VERDICT}),
    },
    "audit.run": {
        "python": lambda w: w.lake.ops.call("audit.run", repo=_repo(w), base="HEAD", reviewers=["ollama/m"]),
        "cli": lambda w: w.cli("audit", "--repo", _repo(w), "--base", "HEAD", "--reviewer", "ollama/m"),
        "mcp": lambda w: w.mcp("audit_run", {"repo": _repo(w), "base": "HEAD", "reviewers": ["ollama/m"]}),
    },
    "knowledge.extract": {
        "python": lambda w: w.lake.ops.call("knowledge.extract", topic="t", rows=ROWS, model=_extractor(w)),
        "mcp": lambda w: w.mcp("knowledge_extract", {"topic": "t", "rows": ROWS, "model": _extractor(w)}),
    },
    "knowledge.check": {
        "python": lambda w: w.lake.ops.call("knowledge.check", corpus="people_c", facts=[], model="ollama/m"),
        "mcp": lambda w: w.mcp("knowledge_check", {"corpus": "people_c", "facts": [], "model": "ollama/m"}),
    },
    "knowledge.consensus": {
        "python": lambda w: w.lake.ops.call("knowledge.consensus", topic="t", rows=ROWS, model=_extractor(w),
                                            first={"facts": FACTS}, facts=FACTS, max_passes=2),
        "mcp": lambda w: w.mcp("knowledge_consensus", {"topic": "t", "rows": ROWS, "model": _extractor(w),
                                                       "first": {"facts": FACTS}, "facts": FACTS, "max_passes": 2}),
    },
    "knowledge.pipeline": {
        "python": lambda w: w.lake.ops.call("knowledge.pipeline", facts=FACTS),
        "mcp": lambda w: w.mcp("knowledge_pipeline", {"facts": FACTS}),
    },
    "knowledge.publish": {
        "python": lambda w: w.lake.ops.call("knowledge.publish", dataset="k_py", title="T", groups=GROUPS, rows=ROWS),
        "mcp": lambda w: w.mcp("knowledge_publish", {"dataset": "k_mcp", "title": "T", "groups": GROUPS, "rows": ROWS}),
    },
    # profile administration is the server owner's: Python and the CLI, no MCP tool (op.local_only)
    "profile.create": {
        "python": lambda w: w.lake.ops.call("profile.create", name="p_py", datasets=["people"], corpora=[]),
        "cli": lambda w: w.cli("profile", "create", "p_cli", "--datasets", "people,sales_*", "--access", "write"),
    },
    "profile.list": {
        "python": lambda w: w.lake.ops.call("profile.list"),
        "cli": lambda w: w.cli("profile", "list"),
    },
    "profile.delete": {
        "python": lambda w: (w.lake.ops.call("profile.create", name="pd_py"), w.lake.ops.call("profile.delete", name="pd_py")),
        "cli": lambda w: (w.lake.ops.call("profile.create", name="pd_cli"), w.cli("profile", "delete", "pd_cli")),
    },
    "profile.rotate_key": {
        "python": lambda w: (w.lake.ops.call("profile.create", name="pr_py"),
                             w.lake.ops.call("profile.rotate_key", name="pr_py")),
        "cli": lambda w: (w.lake.ops.call("profile.create", name="pr_cli"), w.cli("profile", "rotate-key", "pr_cli")),
    },
}
CASES = [(op, surface) for op, calls in CALLS.items() for surface in calls]


def test_the_table_covers_every_operation_and_every_declared_surface() -> None:
    assert set(CALLS) == set(CATALOG.names())
    for op in CATALOG:
        declared = {"python"} | {s for s in ("http", "sql", "cli") if getattr(op, s)}
        if not op.local_only:  # every op but the owner's administration is a tool
            declared.add("mcp")
        assert set(CALLS[op.name]) == declared, op.name


def _records(w: World, op: str, surface: str) -> list[dict[str, Any]]:
    if surface == "cli":  # the CLI opened the lake in its own Lake: its ops are in the files
        w.lake.observer.flush()
        return [r for f in sorted((w.root / "observer").glob("ops-*.jsonl"))
                for r in map(json.loads, f.read_text().splitlines()) if r["op"] == op]
    return [o.to_dict() for o in w.lake.observer.ops if o.op == op]


@pytest.mark.parametrize(("op", "surface"), CASES, ids=[f"{o}-{s}" for o, s in CASES])
def test_each_call_is_recorded_once_with_its_origin(world: World, op: str, surface: str) -> None:
    before = {r["id"] for r in _records(world, op, surface)}
    out = CALLS[op][surface](world)
    for resp in out if isinstance(out, tuple) else (out,):  # World.mcp checks its own result
        if isinstance(resp, httpx.Response):
            assert resp.status_code < 400, resp.text
    new = [r for r in _records(world, op, surface) if r["id"] not in before]
    assert len(new) == 1, new
    assert new[0]["origin"] == surface and new[0]["ok"] is True


def test_declared_surfaces_exist(world: World) -> None:
    """What the catalog (and so the README table) says is what the surfaces have."""
    rules = {(method, rule.rule) for rule in create_app(world.lake).url_map.iter_rules() for method in rule.methods or ()}
    functions = {r[0] for r in world.lake.sql("SELECT function_name FROM duckdb_functions()").fetchall()}
    parser = build_parser()
    for op in CATALOG:
        if op.http:
            method, path = op.http.split(" ")
            assert (method, path) in rules, op.http
        if op.sql:
            assert op.sql.split("(")[0] in functions, op.sql
        if op.cli:
            words = ["x" if w.isupper() or w in ("A,B", "docs|code") else w for w in op.cli.split()[1:]]
            parser.parse_args(words)  # SystemExit (a failed test) if the command does not exist


SURFACES = ["lakehouse/http", "lakehouse/udfs", "lakehouse/cli.py", "lakehouse/mcp"]
# what a surface may import from the engine: the catalog, and helpers that are not capabilities (rendering rows,
# the demo job, decoding SQL's JSON id hand-over)
ALLOWED = {"lakehouse.engine.ops", "lakehouse.engine.display", "lakehouse.engine.demo",
           "lakehouse.engine.vectors.id_lists", "lakehouse.engine.lake"}


def test_surfaces_reach_the_engine_only_through_the_catalog() -> None:
    for surface in SURFACES:
        path = ROOT / surface
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in _runtime_nodes(ast.parse(file.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    if name.startswith("lakehouse.engine"):
                        assert name in ALLOWED, f"{file.relative_to(ROOT)} imports {name}"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (type names, not calls)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)

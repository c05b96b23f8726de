"""Distillation through its surfaces: evidence collected from the lake's records (ops, playbooks, workflow runs,
RAG answers), scored and stored; scoring; SFT export with the firewall over Python, HTTP and the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hash_lake import hash_http_fixture, hash_lake_fixture  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.engine.workflows import NodeRecord, RunStore
from lakehouse.errors import InvalidInput

GOOD = {"id": "ev_good", "kind": "rag_answer", "query": "Who drives the forklift on nights?",
        "answer": "Ann drives it [1].", "retrieved_ids": ["1"], "citations": ["1"], "model": "m", "outcome": 1}
HELD_OUT = {"id": "ev_held_out", "kind": "rag_answer", "query": "Which welder holds the OSHA-10 card?",
            "answer": "Cy holds it [1].", "retrieved_ids": ["3"], "citations": ["3"], "model": "m", "outcome": 1}






def workflow_run(lake: lakehouse.Lake, run_id: str, status: str) -> None:
    """A finished run as the workflow runner records it: a search node, then an answering node."""
    store, t = RunStore(lake.ctx), dt.datetime(2026, 3, 1, 9, 0)
    store.create_run(run_id, "triage", "sha", {"question": "Who can cover the crane shift?"}, ["search", "answer"], t)
    store.node_finished(run_id, NodeRecord("search", "succeeded", 1, {"query": "crane"}, {"results": [{"id": "7"}]},
                                           t, t + dt.timedelta(milliseconds=40)))
    store.node_finished(run_id, NodeRecord("answer", "succeeded", 1, {"model": "tier:local"},
                                           {"answer": "Dan can [1].", "citations": [{"n": 1, "id": "7"}]},
                                           t + dt.timedelta(milliseconds=40), t + dt.timedelta(milliseconds=900)))
    if status != "running":
        store.run_finished(run_id, status, t + dt.timedelta(seconds=1), None if status == "succeeded" else "boom")


def test_collect_builds_scored_evidence_from_every_source(lake, http):
    lake.create_corpus("people", rows=[{"id": 1, "text": "Ann forklift operator"}, {"id": 3, "text": "Cy welder"}])
    lake.record_playbooks([{"query": "forklift on nights", "corpus": "people", "answer_id": 1,
                            "answer_text": "Ann, forklift operator"}])
    workflow_run(lake, "run_ok", "succeeded")
    workflow_run(lake, "run_failed", "failed")
    workflow_run(lake, "run_busy", "running")  # no outcome yet: not evidence
    lake.matrix_search("forklift operator", ["people"])  # an op with a query
    lake.ask("who drives a forklift?", corpora="people")  # its question is private: recorded by size only
    rag = lake.ask("who welds?", corpora="people")

    out = http.post("/v1/distill/collect", json={"rag_answers": [{"result": rag, "outcome": 1}], "records": [GOOD]})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["by_kind"] == {"op": 1, "playbook": 1, "rag_answer": 2, "workflow_run": 2}
    assert body["stored"] == 6 and body["skipped_count"] == 0 and body["scorer_version"] == "distill-scorer/1"
    rows = dict(lake.sql("SELECT id, category FROM lh.evidence").fetchall())
    # a run that succeeded carries no feedback (weak); one that failed is a negative outcome
    assert rows["run_ok"] == "weak" and rows["run_failed"] == "reject" and rows["ev_good"] == "gold"
    assert lake.sql("SELECT query, answer, retrieved_ids, model, source FROM lh.evidence WHERE id = 'run_ok'").fetchone() == (
        "Who can cover the crane shift?", "Dan can [1].", ["7"], "tier:local", "workflow:triage/run_ok")
    queries = [q for (q,) in lake.sql("SELECT query FROM lh.evidence WHERE kind = 'op'").fetchall()]
    assert queries == ["forklift operator"]  # the ask ops' "<n chars>" stand-ins were no queries
    again = lake.ops.call("distill.collect", sources=["playbooks", "workflows"])
    assert again["stored"] == 3 and lake.sql("SELECT count(*) FROM lh.evidence").fetchone()[0] == 6  # same ids
    op = lake.observed_ops(op="distill.collect", limit=1)[0]
    assert op["origin"] == "python" and op["output"]["stored"] == 3


def test_collect_refuses_bad_caller_input_whole(lake, http):
    resp = http.post("/v1/distill/collect", json={"records": [GOOD, {"kind": "op", "rating": 9}]})
    assert resp.status_code == 400 and "records[1]" in resp.json()["error"]["message"]
    resp = http.post("/v1/distill/collect", json={"rag_answers": [{"answer": "x"}]})
    assert resp.status_code == 400 and "rag_answers[0]" in resp.json()["error"]["message"]
    assert lake.sql("SELECT count(*) FROM lh.evidence").fetchone()[0] == 0


def test_score_records_and_stored_ids(lake, http):
    lake.ops.call("distill.collect", sources=[], records=[GOOD])
    scored = http.post("/v1/distill/score", json={"records": [GOOD, {**GOOD, "id": "x", "outcome": -1}]}).json()
    assert [(r["id"], r["category"], r["rule"]) for r in scored["results"]] == [
        ("ev_good", "gold", "gold"), ("x", "reject", "negative_outcome")]
    assert scored["by_category"] == {"gold": 1, "usable": 0, "weak": 0, "reject": 1}
    assert lake.ops.call("distillation.score", ids=["ev_good"])["results"][0]["category"] == "gold"
    assert http.post("/v1/distill/score", json={"ids": ["ev_good", "ev_nope"]}).status_code == 400


def test_export_from_the_cli_with_a_holdout_file(lake, tmp_path, capsys):
    lake.ops.call("distill.collect", sources=[], records=[GOOD, HELD_OUT, {**GOOD, "id": "ev_weak", "outcome": None}])
    holdout = tmp_path / "eval.jsonl"
    holdout.write_text(json.dumps({"id": "q7", "question": HELD_OUT["query"]}) + "\n")
    out = tmp_path / "sft.jsonl"
    code = cli_main(["distill", "export", "--min-category", "usable", "--out", str(out), "--holdout", str(holdout),
                     "--root", str(lake.root)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and (report["considered"], report["written"]) == (3, 1)
    assert {(d["id"], d["stage"]) for d in report["dropped"]} == {("ev_held_out", "firewall"), ("ev_weak", "category")}
    firewall = next(d for d in report["dropped"] if d["stage"] == "firewall")
    assert firewall["matches"][0]["holdout_id"] == "q7" and firewall["matches"][0]["rule"] == "exact"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["metadata"]["id"] for line in lines] == ["ev_good"]
    assert [m["role"] for m in lines[0]["messages"]] == ["system", "user", "assistant"]


def test_remote_exports_land_in_the_lakes_exports_folder(lake, http, tmp_path):
    lake.ops.call("distill.collect", sources=[], records=[GOOD, HELD_OUT])
    resp = http.post("/v1/distill/export", json={"out": "sft.jsonl", "holdout": [HELD_OUT["answer"]]})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["path"] == "exports/sft.jsonl" and report["written"] == 1 and str(lake.root) not in resp.text
    assert len((lake.root / "exports" / "sft.jsonl").read_text().splitlines()) == 1
    nested = http.post("/v1/distill/export", json={"out": str(lake.root / "exports" / "a" / "b.jsonl")})
    assert nested.status_code == 200 and nested.json()["path"] == "exports/a/b.jsonl"

    (lake.root / "exports" / "escape").symlink_to(tmp_path)
    for out in (str(tmp_path / "x.jsonl"), "../x.jsonl", "escape/x.jsonl", "."):
        resp = http.post("/v1/distill/export", json={"out": out})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "path_outside_exports", out
    assert not (tmp_path / "x.jsonl").exists() and not (lake.root / "x.jsonl").exists()
    resp = http.post("/v1/distill/export", json={"out": "y.jsonl", "holdout": str(tmp_path / "eval.jsonl")})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "path_outside_import_dirs"
    resp = http.post("/v1/distill/export", json={"out": "y.jsonl", "holdout": "missing.jsonl"})
    assert resp.status_code == 400 and str(tmp_path) not in resp.text
    assert not (lake.root / "exports" / "y.jsonl").exists()


def test_an_export_that_cannot_be_written_or_read_is_a_400_in_the_callers_words(lake, http, tmp_path):
    """A directory or an over-long name as `out`, and a held-out file that is not UTF-8, were 500s."""
    lake.ops.call("distill.collect", sources=[], records=[GOOD])
    (lake.root / "exports" / "taken").mkdir(parents=True)
    for out in ("taken", "x" * 300 + ".jsonl"):
        resp = http.post("/v1/distill/export", json={"out": out})
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "invalid_out" and error["field"] == "out" and str(lake.root) not in resp.text
    assert (lake.root / "exports" / "taken").is_dir() and list((lake.root / "exports").iterdir()) == [
        lake.root / "exports" / "taken"]  # no temporary file left behind
    with pytest.raises(InvalidInput, match="cannot be written: Is a directory") as info:
        lake.ops.call("distill.export", out=str(tmp_path))
    assert info.value.code == "invalid_out"

    holdout = lake.settings.import_dirs[0] + "/latin1.jsonl"
    with open(holdout, "wb") as fh:
        fh.write('{"query": "caf\xe9"}\n'.encode("latin-1"))
    resp = http.post("/v1/distill/export", json={"out": "h.jsonl", "holdout": "latin1.jsonl"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == {"code": "invalid_holdout", "message": (
        "holdout file 'latin1.jsonl' is not UTF-8 text (invalid continuation byte at byte 14)")}
    assert not (lake.root / "exports" / "h.jsonl").exists()

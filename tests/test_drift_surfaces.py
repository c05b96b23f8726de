"""Drift through its surfaces: scorer, playbook, embedding and audit drift over Python, SQL, HTTP (a loopback
server) and the CLI; alerts in the storage journal; the samples embedding drift compares."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from hash_lake import hash_http_fixture, hash_lake_fixture, run_cli  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.engine.drift.samples import Selection, load_sample
from lakehouse.errors import Forbidden, InvalidInput, LakehouseError

A_TEXTS = [f"forklift warehouse pallet loader {i}" for i in range(80)]
B_TEXTS = [f"pastry bakery croissant oven {i}" for i in range(80)]






def alerts(lake: lakehouse.Lake, op: str) -> list[dict[str, Any]]:
    return [e for e in lake.ops.call("storage.errors", kind="drift_alert") if e["code"] == op]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# -- scorer drift ------------------------------------------------------------------------------------------------


GOOD = {"kind": "rag_answer", "query": "who drives a forklift?", "answer": "Ann does [1].", "retrieved_ids": ["1"],
        "citations": ["1"], "model": "m", "outcome": 1, "id": "ev_good"}
BAD = {"kind": "rag_answer", "query": "who bakes?", "answer": "Nobody.", "outcome": -1, "id": "ev_bad"}


def test_scorer_drift_counts_records_whose_category_moved(lake, http, capsys):
    stored = lake.ops.call("distill.collect", sources=[], records=[GOOD, BAD])
    assert stored["stored"] == 2 and stored["by_category"]["gold"] == 1 and stored["by_category"]["reject"] == 1
    assert lake.ops.call("drift.scorer")["drifted"] == 0 and alerts(lake, "drift.scorer") == []
    # a record scored by an older scorer: its persisted category is not what today's scorer says
    lake.sql("UPDATE lh.evidence SET category = 'usable' WHERE id = 'ev_bad'")

    out = lake.ops.call("drift.scorer", entries=True)
    assert (out["total"], out["drifted"], out["scorer_version"]) == (2, 1, "distill-scorer/1")
    assert out["shift_matrix"] == [{"from": "gold", "to": "gold", "count": 1},
                                   {"from": "usable", "to": "reject", "count": 1}]
    assert [(e["id"], e["from"], e["to"]) for e in out["entries"]] == [("ev_bad", "usable", "reject")]

    first, second = (http.post("/v1/drift/scorer", json={"entries": True}) for _ in range(2))
    assert first.status_code == 200 and first.content == second.content  # byte-identical across runs
    assert first.json() == out
    assert lake.sql("SELECT from_category, to_category, count FROM scorer_drift() ORDER BY ALL").fetchall() == [
        ("gold", "gold", 1), ("usable", "reject", 1)]
    code, printed, _ = run_cli(lake, capsys, "drift", "scorer", "--entries")
    assert code == 0 and printed == out

    found = alerts(lake, "drift.scorer")
    assert len(found) == 5 and found[0]["target"] == "lh.evidence" and found[0]["details"]["drifted"] == 1
    # the System tab's view of the same journal, through HTTP and SQL
    listed = http.get("/storage/errors", params={"kind": "drift_alert"}).json()["errors"]
    assert [e["code"] for e in listed] == ["drift.scorer"] * 5
    assert lake.sql("SELECT count(*) FROM storage_errors() WHERE kind = 'drift_alert'").fetchone()[0] == 5
    lake.ops.call("drift.scorer", threshold=0.5)  # 1 of 2 is not above 0.5: measured, not alerted
    assert len(alerts(lake, "drift.scorer")) == 5


# -- playbook drift ----------------------------------------------------------------------------------------------


def test_playbook_drift_reports_answers_no_longer_found(lake, http, capsys):
    lake.create_corpus("jobs", rows=[{"id": 1, "text": "forklift operator warehouse"},
                                     {"id": 2, "text": "pastry chef bakery"},
                                     {"id": 3, "text": "crane operator harbour"}])
    lake.create_corpus("gone", rows=[{"id": 1, "text": "welder"}, {"id": 2, "text": "painter"}])
    lake.record_playbooks([
        {"query": "pastry chef bakery", "corpus": "jobs", "answer_id": 2, "recorded_at": "2026-01-02T00:00:00"},
        {"query": "forklift operator warehouse", "corpus": "jobs", "answer_id": 1, "recorded_at": "2026-01-01T00:00:00"},
        {"query": "crane operator harbour", "corpus": "jobs", "answer_id": 3, "recorded_at": "2026-01-03T00:00:00"},
        {"query": "crane operator harbour", "corpus": "jobs", "answer_id": 3, "outcome": -1,
         "recorded_at": "2026-01-04T00:00:00"},  # a later failure retires that success
        {"query": "welder", "corpus": "gone", "answer_id": 1, "recorded_at": "2026-01-05T00:00:00"},
    ])
    lake.drop_corpus("gone")
    lake.add_to_corpus("jobs", [{"id": 2, "text": "quantum physics lecture"}])  # the recorded answer moved away

    out = lake.ops.call("drift.playbooks", k=2)
    assert (out["k"], out["total"], out["drifted"]) == (2, 3, 2)
    assert [(p["query"], p["found"], p["rank"], p["error"]) for p in out["playbooks"]] == [  # oldest first
        ("forklift operator warehouse", True, 1, None), ("pastry chef bakery", False, None, None),
        ("welder", False, None, "corpus_not_found")]
    assert out["corpora"] == [{"corpus": "gone", "total": 1, "drifted": 1}, {"corpus": "jobs", "total": 2, "drifted": 1}]
    assert lake.ops.call("drift.playbooks", corpus="jobs", k=2)["total"] == 2

    assert http.post("/v1/drift/playbooks", json={"k": 2}).json() == out
    rows = lake.sql("SELECT query, found, rank FROM playbook_drift(k := 2)").fetchall()
    assert rows == [("forklift operator warehouse", True, 1), ("pastry chef bakery", False, None), ("welder", False, None)]
    code, printed, _ = run_cli(lake, capsys, "drift", "playbooks", "-k", "2", "--corpus", "jobs")
    assert code == 0 and printed["drifted"] == 1
    alert = alerts(lake, "drift.playbooks")[0]
    assert alert["target"] == "jobs" and alert["details"]["corpora"] == ["jobs"]


# -- embedding drift ---------------------------------------------------------------------------------------------


@pytest.fixture
def generations(lake: lakehouse.Lake) -> str:
    """Corpus `docs`: generation 1 indexed 80 warehouse rows; then 80 bakery rows were added (after the returned
    time) and generation 2 indexed all 160."""
    lake.create_corpus("docs", rows=[{"id": i, "text": t} for i, t in enumerate(A_TEXTS)])
    middle = now()
    lake.add_to_corpus("docs", [{"id": 100 + i, "text": t} for i, t in enumerate(B_TEXTS)])
    lake.rebuild_index("docs")
    return middle


A_IDS = "SELECT i::VARCHAR FROM range(80) t(i)"  # the warehouse rows' ids


def test_embedding_drift_between_generations_windows_and_id_queries(lake, http, capsys, generations):
    call = lake.ops.call
    same = call("drift.embeddings", corpus="docs", a={"generation": 1}, b={"ids_sql": A_IDS})
    assert same["drifted"] is False and same["fired"] == []
    assert same["a"] == {"generation": 1, "rows": 80, "snapshot_id": same["a"]["snapshot_id"], "exact": True}
    assert same["b"] == {"ids_sql": A_IDS, "rows": 80, "ids": 80}
    assert alerts(lake, "drift.embeddings") == []

    moved = call("drift.embeddings", corpus="docs", a={"generation": 1}, b={"since": generations})
    assert moved["b"]["rows"] == 80 and moved["drifted"] is True and len(moved["fired"]) >= 2
    assert [t["name"] for t in moved["tests"]] == ["ks", "psi", "mmd", "classifier"]
    for t in moved["tests"]:
        assert set(t) >= {"name", "statistic", "p_value", "threshold", "drifted"}
    half = call("drift.embeddings", corpus="docs", a={"generation": 1}, b={"generation": 2}, tests=["mmd", "classifier"])
    assert half["b"]["rows"] == 160 and [t["name"] for t in half["tests"]] == ["mmd", "classifier"]

    body = {"corpus": "docs", "a": {"generation": 1}, "b": {"since": generations}}
    first, second = (http.post("/v1/drift/embeddings", json=body) for _ in range(2))
    assert first.status_code == 200 and first.content == second.content  # seeded: the same report every time
    assert first.json() == moved
    rows = lake.sql("SELECT name, drifted, overall FROM embedding_drift('docs', {'generation': 1}, ?)",
                    [json.dumps({"since": generations})]).fetchall()
    assert [r[0] for r in rows] == ["ks", "psi", "mmd", "classifier"] and all(r[2] for r in rows)
    assert [r[1] for r in rows] == [t["drifted"] for t in moved["tests"]]
    code, printed, _ = run_cli(lake, capsys, "drift", "embeddings", "docs", "--a", "1", "--b", json.dumps({"since": generations}))
    assert code == 0 and printed == moved
    alert = alerts(lake, "drift.embeddings")[0]
    assert alert["target"] == "docs" and alert["details"]["fired"] == moved["fired"]


def test_a_generation_is_the_rows_it_indexed_even_after_they_change(lake, generations):
    original = load_sample(lake.ctx, "docs", Selection(generation=1))
    lake.add_to_corpus("docs", [{"id": 0, "text": B_TEXTS[0]}])  # row 0 replaced after generation 1 was built
    again = load_sample(lake.ctx, "docs", Selection(generation=1))
    assert again.details["exact"] is True and np.array_equal(again.vectors, original.vectors)
    assert np.allclose(original.vectors, lake.embed(A_TEXTS), atol=1e-6)
    later = load_sample(lake.ctx, "docs", Selection(since=generations))
    assert later.vectors.shape[0] == 81  # the bakery rows and the replacement: added in the window
    before = load_sample(lake.ctx, "docs", Selection(since="2000-01-01T00:00:00", until=generations))
    assert before.vectors.shape[0] == 80

    # once the snapshot is expired the membership is today's rows up to the generation's max key
    lake.sql(f"CALL ducklake_expire_snapshots('lake', versions => [{int(original.details['snapshot_id'])}])")
    expired = load_sample(lake.ctx, "docs", Selection(generation=1))
    assert expired.details["exact"] is False and expired.vectors.shape == (79, original.vectors.shape[1])


def test_embedding_drift_refusals_on_every_surface(lake, http, capsys, generations):
    writes = {"ids_sql": "DELETE FROM docs"}
    reads_files = {"ids_sql": "SELECT * FROM read_csv('/etc/passwd')"}
    for side in (writes, reads_files):
        with pytest.raises(Forbidden):
            lake.ops.call("drift.embeddings", corpus="docs", a=side, b={"generation": 1})
        resp = http.post("/v1/drift/embeddings", json={"corpus": "docs", "a": side, "b": {"generation": 1}})
        assert resp.status_code == 403, resp.text
        with pytest.raises(LakehouseError) as err:
            lake.sql("SELECT * FROM embedding_drift('docs', ?, {'generation': 1})", [json.dumps(side)]).fetchall()
        assert err.value.status == 403
        code, _, err = run_cli(lake, capsys, "drift", "embeddings", "docs", "--a", json.dumps(side), "--b", "1")
        assert code == 2 and "not allowed" in err
    with pytest.raises(InvalidInput, match="at least 2"):
        lake.ops.call("drift.embeddings", corpus="docs", a={"ids_sql": "SELECT '0'"}, b={"generation": 1})
    with pytest.raises(InvalidInput, match="window is empty"):
        lake.ops.call("drift.embeddings", corpus="docs", a={"since": now(), "until": "2000-01-01"}, b={"generation": 1})
    with pytest.raises(InvalidInput, match="a selection is"):  # with a parameter, lake.sql runs at once
        lake.sql("SELECT * FROM embedding_drift('docs', {'generation': 1, 'ids_sql': 'SELECT 1'}, ?)",
                 ['{"generation": 2}']).fetchall()


# -- audit-baseline drift ----------------------------------------------------------------------------------------


def test_audit_drift_reads_the_lakes_own_baselines(lake, http, capsys):
    missing = http.post("/v1/drift/audit")
    assert missing.status_code == 404 and str(lake.root) not in missing.text  # no server path to a caller
    runs = [{"by_severity": {"error": 1, "warn": 4}, "by_check": {"sql_injection": 1, "todo": 4}}] * 3 + [
        {"by_severity": {"error": 5, "warn": 4}, "by_check": {"sql_injection": 5, "todo": 4}}]
    folder = lake.root / "auditor"
    folder.mkdir()
    (folder / "audit_baselines.jsonl").write_text("".join(
        json.dumps({"ts": f"2026-01-0{i + 1}T00:00:00Z", "head": f"c{i}", "counts": c}) + "\n" for i, c in enumerate(runs)))

    out = lake.ops.call("drift.audit", previous=3)
    assert out["flagged"] == 2 and out["latest"] == {"ts": "2026-01-04T00:00:00Z", "head": "c3"}
    assert [(c["name"], c["delta"]) for c in out["by_check"]] == [("sql_injection", 4.0)]
    assert http.post("/v1/drift/audit", json={"previous": 3}).json() == out
    code, printed, _ = run_cli(lake, capsys, "drift", "audit", "--previous", "3")
    assert code == 0 and printed == out
    alert = alerts(lake, "drift.audit")[0]
    assert alert["details"]["flagged"] == ["error", "sql_injection"] and alert["details"]["head"] == "c3"

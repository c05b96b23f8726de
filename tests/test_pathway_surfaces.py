"""Pathway memory through its surfaces: fingerprint, record, look up and replay over Python, HTTP and the CLI;
replayed steps run with the caller's origin and rights."""

from __future__ import annotations

import json

from hash_lake import hash_http_fixture, hash_lake_fixture, run_cli  # noqa: F401  (fixtures)

from lakehouse.engine.pathways import fingerprint

CSV = b"id,name\n1,Ann\n2,Bob\n"






def test_fingerprint_is_the_same_on_every_surface(lake, http, capsys):
    text = "IL forklift operators with OSHA-10"
    expected = fingerprint(text)
    assert len(expected) == 32 and sum(expected) == 6  # il, forklift, operators, with, osha, 10
    assert http.post("/v1/pathways/fingerprint", json={"text": text}).json() == {"buckets": expected}
    assert lake.ops.call("pathways.fingerprint", text=text) == {"buckets": expected}
    assert run_cli(lake, capsys, "pathways", "fingerprint", text)[:2] == (0, {"buckets": expected})


def test_record_and_look_up(lake, http, capsys):
    steps = [{"op": "sql.query", "input": {"sql": "SELECT 42 AS answer"}},
             {"op": "pathways.fingerprint", "input": {"text": "a b"}, "output": {"buckets": fingerprint("a b")}}]
    first = http.post("/v1/pathways", json={"text": "the answer to everything", "steps": steps})
    assert first.status_code == 201, first.text
    stored = first.json()
    assert stored["id"].startswith("pw_") and stored["successes"] == 1
    assert {"kind": "type_hint", "step": 0, "field": "sql", "type": "string"} in stored["annotations"]
    assert json.loads((lake.root / "pathways" / "pathways.json").read_text())["pathways"][0]["id"] == stored["id"]
    again = lake.ops.call("pathways.record", text="the answer to everything", steps=steps)
    assert again["id"] == stored["id"] and again["successes"] == 2
    lake.ops.call("pathways.record", text="forklift drivers in Illinois", steps=steps[:1])

    found = http.post("/v1/pathways/lookup", json={"text": "answer to everything?", "k": 1}).json()["results"]
    assert [r["pathway"]["id"] for r in found] == [stored["id"]] and found[0]["score"] > 0.8
    code, out, _ = run_cli(lake, capsys, "pathways", "lookup", "drivers Illinois")
    assert code == 0 and out["results"][0]["pathway"]["text"] == "forklift drivers in Illinois"

    replayed = http.post(f"/v1/pathways/{stored['id']}/replay").json()
    assert replayed["ok"] is True and [s["same_output"] for s in replayed["steps"]] == [None, True]


def test_replay_runs_each_step_as_the_caller(lake, http, tmp_path, capsys):
    source = tmp_path / "people.csv"
    source.write_bytes(CSV)
    steps = [{"op": "dataset.ingest", "input": {"source": str(source), "dataset": "people"}},
             {"op": "dataset.list", "input": {}}]
    pathway = lake.ops.call("pathways.record", text="load the people", steps=steps)["id"]

    # over HTTP a server-side path must be inside import_dirs: the step fails as the same call would
    over_http = http.post(f"/v1/pathways/{pathway}/replay").json()
    assert (over_http["ok"], over_http["succeeded"], over_http["failed"]) == (False, 1, 1)
    assert over_http["steps"][0]["error_code"] == "path_outside_import_dirs"
    listed = [o for o in lake.observer.ops if o.op == "dataset.list"]
    assert [o.origin for o in listed] == ["http"]  # the step ran as the HTTP caller, recorded as such
    stopped = http.post(f"/v1/pathways/{pathway}/replay", json={"stop_on_failure": True}).json()
    assert (stopped["failed"], stopped["skipped"]) == (1, 1)
    assert lake.datasets() == []

    # the CLI is a local caller: it may read the file
    code, from_cli, _ = run_cli(lake, capsys, "pathways", "replay", pathway)
    assert code == 0 and from_cli["ok"] is True
    assert [d["name"] for d in lake.datasets()] == ["people"]


def test_a_pathway_never_replays_a_pathway(lake, http):
    resp = http.post("/v1/pathways", json={"text": "loop", "steps": [{"op": "pathways.replay", "input": {"id": "x"}}]})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_pathway"
    pathway = lake.ops.call("pathways.record", text="loop", steps=[{"op": "dataset.list", "input": {}}])
    state = lake.root / "pathways" / "pathways.json"
    body = json.loads(state.read_text())  # edited by hand: the step now replays its own pathway
    body["pathways"][0]["steps"][0] = {"op": "pathways.replay", "input": {"id": pathway["id"]}, "output_digest": None}
    state.write_text(json.dumps(body))
    out = http.post(f"/v1/pathways/{pathway['id']}/replay").json()
    assert out["failed"] == 1 and out["steps"][0]["error_code"] == "invalid_pathway"

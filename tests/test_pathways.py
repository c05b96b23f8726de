"""Pathway memory: the fingerprint (golden vectors), the state file, lookup, annotations, replay."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading

import pytest

from lakehouse.engine.pathways import (
    BUCKETS,
    BugFingerprint,
    Pathway,
    PathwayStore,
    SemanticFlag,
    TypeHint,
    annotation_from_dict,
    annotation_to_dict,
    cosine,
    fingerprint,
    output_digest,
    replay,
)
from lakehouse.errors import InvalidInput, NotFound, StorageError

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

# Fixed strings and their vectors, for checking a re-implementation byte for byte.
GOLDEN = {
    "hello world": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    "Find forklift operators in IL with OSHA-10":
        [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0],
    "SELECT count(*) FROM workers WHERE state = 'IL'":
        [0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
}


def by_hand(text: str) -> list[int]:
    """The specification, written out independently of the module."""
    vec = [0] * 32
    for token in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(token.encode()).digest()
        vec[int.from_bytes(digest[:4], "big") % 32] += 1
    return vec


@pytest.mark.parametrize("text", sorted(GOLDEN))
def test_golden_vectors(text):
    assert fingerprint(text) == GOLDEN[text] == by_hand(text)


@pytest.mark.parametrize("text", ["", "!!!", "Ünïcode straße 42", "a a a a", "x_y-z.w", "MiXeD CaSe 123abc"])
def test_fingerprint_matches_the_specification(text):
    vec = fingerprint(text)
    assert vec == by_hand(text) and len(vec) == BUCKETS
    assert sum(vec) == len(re.findall(r"[a-z0-9]+", text.lower()))


def test_hello_bucket_by_hand():
    # sha256(b"hello") begins 2c f2 4d ba: 0x2cf24dba % 32 == 0xba % 32 == 26
    assert hashlib.sha256(b"hello").hexdigest().startswith("2cf24dba")
    assert 0x2CF24DBA % 32 == 26 and fingerprint("hello")[26] == 1


def test_cosine():
    assert cosine([1, 0], [1, 0]) == 1.0 and cosine([1, 0], [0, 1]) == 0.0 and cosine([0, 0], [1, 1]) == 0.0


def steps() -> list[dict]:
    return [{"op": "sql", "input": {"sql": "SELECT * FROM workers WHERE state = 'IL'", "max_rows": 100}, "output": [[1]]},
            {"op": "matrix_search", "input": {"query": "forklift OSHA-10", "corpora": ["workers"], "k": 5}}]


def test_build_derives_id_hints_and_digest():
    p = Pathway.build("Find forklift operators in IL with OSHA-10", steps(), now=NOW)
    again = Pathway.build("Find forklift operators in IL with OSHA-10", steps(), now=NOW + dt.timedelta(days=1))
    assert p.id == again.id and p.id.startswith("pw_")
    assert p.fingerprint == GOLDEN["Find forklift operators in IL with OSHA-10"]
    assert p.steps[0].output_digest == output_digest([[1]]) and p.steps[1].output_digest is None
    assert TypeHint(0, "max_rows", "integer") in p.annotations and TypeHint(1, "corpora", "array") in p.annotations
    assert p.created_at == "2025-03-01T12:00:00Z"


@pytest.mark.parametrize(("text", "bad_steps", "field"), [
    ("", steps(), "text"), ("goal", [], "steps"), ("goal", [{"input": {}}], "steps[0]"),
    ("goal", [{"op": "sql", "input": "x"}], "steps[0].input"),
])
def test_build_refuses_bad_pathways(text, bad_steps, field):
    with pytest.raises(InvalidInput) as err:
        Pathway.build(text, bad_steps)
    assert err.value.details["field"] == field


def test_state_file_format_and_round_trip(tmp_path):
    store = PathwayStore(tmp_path / "pathways.json")
    flag, bug = SemanticFlag("needs_filter", "state"), BugFingerprint.of("sql", "sql_binder", "column x not found", 0)
    p = store.record(Pathway.build("IL forklift operators", steps(), annotations=[flag, bug], now=NOW))
    raw = json.loads((tmp_path / "pathways.json").read_text())
    assert raw["version"] == 1 and [q["id"] for q in raw["pathways"]] == [p.id]
    stored = raw["pathways"][0]
    assert set(stored) == {"id", "text", "fingerprint", "steps", "annotations", "successes", "created_at", "last_success"}
    assert stored["annotations"][0] == {"kind": "semantic_flag", "name": "needs_filter", "value": "state", "note": ""}
    assert stored["annotations"][1]["kind"] == "bug_fingerprint" and len(stored["annotations"][1]["signature"]) == 32
    assert store.get(p.id) == p
    assert sorted(x.name for x in tmp_path.iterdir()) == ["pathways.json", "pathways.json.lock"]  # no temp left


def test_recording_again_counts_successes_and_merges_annotations(tmp_path):
    store = PathwayStore(tmp_path / "p.json")
    store.record(Pathway.build("goal one", steps(), now=NOW))
    later = Pathway.build("goal one", steps(), annotations=[SemanticFlag("pii", False)], now=NOW + dt.timedelta(hours=1))
    merged = store.record(later)
    assert merged.successes == 2 and merged.last_success == "2025-03-01T13:00:00Z"
    assert merged.created_at == "2025-03-01T12:00:00Z" and SemanticFlag("pii", False) in merged.annotations
    assert len(store.all()) == 1


def test_lookup_ranks_by_fingerprint_cosine(tmp_path):
    store = PathwayStore(tmp_path / "p.json")
    forklift = store.record(Pathway.build("forklift operators in Illinois", steps(), now=NOW))
    welders = store.record(Pathway.build("certified welders in Ohio", steps()[:1], now=NOW))
    hits = store.lookup("Illinois forklift drivers", k=5)
    assert hits[0].pathway.id == forklift.id and hits[0].score == round(
        cosine(fingerprint("Illinois forklift drivers"), forklift.fingerprint), 6)
    assert all(h.score > 0 for h in hits)
    assert store.lookup("!!!", k=3) == []
    assert store.lookup("welders", k=1)[0].to_dict()["pathway"]["id"] == welders.id
    with pytest.raises(InvalidInput, match="k must be"):
        store.lookup("x", k=0)


def test_forget_and_get(tmp_path):
    store = PathwayStore(tmp_path / "p.json")
    p = store.record(Pathway.build("goal", steps(), now=NOW))
    assert store.forget(p.id) is True and store.forget(p.id) is False
    with pytest.raises(NotFound):
        store.get(p.id)


def test_concurrent_records_are_not_lost(tmp_path):
    store = PathwayStore(tmp_path / "p.json")
    threads = [threading.Thread(target=lambda i=i: PathwayStore(tmp_path / "p.json").record(
        Pathway.build(f"goal number {i}", steps(), now=NOW))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.all()) == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content", ["{not json", '{"version": 2, "pathways": []}', '{"pathways": {}}',
                                     '{"version": 1, "pathways": [{"id": "p", "text": "t", "fingerprint": [1]}]}'])
def test_unreadable_state_is_a_storage_error(tmp_path, content):
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(StorageError):
        PathwayStore(tmp_path / "p.json").all()


def test_annotations_round_trip_and_refusals():
    for item in (SemanticFlag("pii", True, "has names"), BugFingerprint.of("chat", "timeout", "x" * 500, 2),
                 TypeHint(0, "k", "integer")):
        assert annotation_from_dict(json.loads(json.dumps(annotation_to_dict(item)))) == item
    assert len(BugFingerprint.of("chat", "timeout", "x" * 500).message) == 200
    for bad, field in (({"kind": "macro"}, "annotations.kind"), ({"kind": "type_hint", "step": 0, "field": "k",
                       "type": "int"}, "annotations.type"), ({"kind": "semantic_flag", "name": "x", "code": "1"},
                       "annotations.code"), ({"kind": "semantic_flag", "name": "x", "value": [1]}, "annotations.value")):
        with pytest.raises(InvalidInput) as err:
            annotation_from_dict(bad)
        assert err.value.details["field"] == field


def test_replay_reports_each_step():
    p = Pathway.build("goal", [*steps(), {"op": "chat", "input": {"prompt": "hi"}, "output": "hello"}], now=NOW)
    calls = []

    def run_op(op, inp):
        calls.append(op)
        if op == "matrix_search":
            raise InvalidInput("corpus 'workers' not found", code="corpus_not_found")
        return {"sql": [[1]], "chat": "changed"}[op]

    report = replay(p, run_op)
    assert calls == ["sql", "matrix_search", "chat"]
    assert [(s.op, s.ok, s.error_code, s.same_output) for s in report.steps] == [
        ("sql", True, None, True), ("matrix_search", False, "corpus_not_found", None), ("chat", True, None, False)]
    assert (report.succeeded, report.failed, report.skipped, report.ok) == (2, 1, 0, False)
    stopped = replay(p, run_op, stop_on_failure=True)
    assert (stopped.succeeded, stopped.failed, stopped.skipped) == (1, 1, 1)
    assert stopped.to_dict()["steps"][1]["error"] == "corpus 'workers' not found"


def test_replay_passes_a_copy_and_checks_type_hints():
    p = Pathway.build("goal", steps(), annotations=[TypeHint(1, "k", "string")], hints=False, now=NOW)
    seen = []

    def run_op(op, inp):
        seen.append(inp)
        inp.clear()
        return None

    report = replay(p, run_op)
    assert report.ok and p.steps[0].input["max_rows"] == 100 and seen[0] == {}
    assert report.steps[1].hint_mismatches == ("k: expected string, got integer",)

"""The observer: what each op records, files by day with retention, stats, the storage journal, HNSW trials,
the SQL views, OTLP export, and no key anywhere in any of it."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import lakehouse
from lakehouse.engine.observer import ObservedOp, Observer
from lakehouse.engine.observer.files import DailyFiles
from lakehouse.errors import InvalidInput, NotFound, SettingsError

CSV = b"id,name,role\n1,Ann,Forklift Operator\n2,Bob,Pastry Chef\n3,Cy,Welder\n"


@pytest.fixture
def hlake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        yield lk


def _op(i: int, op: str = "x", origin: str = "python", ok: bool = True, ms: float = 1.0,
        ts: dt.datetime | None = None) -> ObservedOp:
    ts = ts or dt.datetime.now(dt.UTC)
    return ObservedOp(id=f"id{i}", ts=ts.replace(tzinfo=None).isoformat(timespec="milliseconds"), op=op,
                      origin=origin, duration_ms=ms, ok=ok, error_code=None if ok else "boom")


def test_an_op_records_inputs_outputs_and_errors(hlake: lakehouse.Lake) -> None:
    hlake.ingest(CSV, "people", filename="people.csv")
    hlake.create_corpus("c", dataset="people", text="role")
    hits = hlake.vector_search("c", "forklift", 2)
    with pytest.raises(NotFound):
        hlake.vector_search("nope", "forklift", 2)
    with pytest.raises(InvalidInput):
        hlake.vector_search("c", "forklift", k=-1)
    ops = [o for o in hlake.observer.recent() if o.op == "vectors.search"]
    ok, missing, bad = ops
    assert ok.ok and ok.rows == len(hits) == 2 and ok.origin == "python" and ok.duration_ms > 0
    assert ok.input == {"corpus": "c", "query": "forklift", "k": 2, "with_rows": False}
    assert not missing.ok and missing.error_code == "corpus_not_found" and "nope" in missing.error
    assert not bad.ok and bad.error_code == "invalid_k" and bad.input["k"] == -1  # the raw input, since it failed
    ingest = next(o for o in hlake.observer.recent() if o.op == "dataset.ingest")
    assert ingest.input["source"] == f"<{len(CSV)} bytes>" and ingest.output["rows"] == 3 and ingest.rows == 3


def test_big_inputs_are_summarised(hlake: lakehouse.Lake) -> None:
    hlake.create_corpus("c", rows=[{"id": i, "text": f"row {i}"} for i in range(50)])
    hlake.vector_search("c", np.ones(384, dtype=np.float32), 3, ids=list(range(40)))
    hlake.query("SELECT '" + "x" * 5000 + "' AS long")
    rec = [o for o in hlake.observer.recent() if o.op in ("vectors.search", "sql.query", "corpus.create")]
    create, search, query = rec
    assert create.input["rows"] == "<50 items>"
    assert search.input["query"] == "<array 384 float32>" and search.input["ids"] == "<40 items>"
    assert query.input["sql"].endswith(f"… ({5000 + 17} chars)") and len(query.input["sql"]) < 260


def test_files_rotate_by_day_and_old_ones_are_deleted(tmp_path: Path) -> None:
    writer = DailyFiles(tmp_path, "ops", retention_days=0)
    for day in ("2026-11-20", "2026-11-23", "2026-11-24", "2026-11-27"):
        writer.append([json.dumps({"id": day}).encode()], day)
    files = DailyFiles(tmp_path, "ops", retention_days=3)
    assert files.days() == ["2026-11-20", "2026-11-23", "2026-11-24", "2026-11-27"]
    assert files.prune(dt.date(2026, 11, 27)) == ["2026-11-20", "2026-11-23"]
    assert [r["id"] for r in files.read()] == ["2026-11-24", "2026-11-27"]
    assert [r["id"] for r in files.read("2026-11-25")] == ["2026-11-27"]
    forever = DailyFiles(tmp_path, "ops", retention_days=0)
    assert forever.prune(dt.date(2030, 1, 1)) == [] and len(forever.days()) == 2
    with (tmp_path / "ops-2026-11-27.jsonl").open("ab") as fh:
        fh.write(b'{"id": "ok"}\n{"id": "torn')  # a crash mid-write
    assert [r["id"] for r in files.read("2026-11-27")] == ["2026-11-27", "ok"]


def test_an_observer_writes_each_op_to_the_file_of_its_day(tmp_path: Path) -> None:
    obs = Observer(tmp_path, retention_days=2)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    obs.record(_op(1, ts=yesterday))
    obs.record(_op(2))
    obs.close()
    by_day = {p.name: [json.loads(x)["id"] for x in p.read_text().splitlines()] for p in tmp_path.glob("ops-*")}
    assert by_day == {f"ops-{yesterday.date()}.jsonl": ["id1"], f"ops-{dt.datetime.now(dt.UTC).date()}.jsonl": ["id2"]}


def test_stats_percentiles_match_a_computed_answer(tmp_path: Path) -> None:
    obs = Observer(tmp_path, capacity=50)
    rng = np.random.default_rng(3)
    now = dt.datetime.now(dt.UTC)
    durations = {("a", "http"): rng.exponential(5, 80), ("a", "sql"): rng.exponential(2, 30),
                 ("b", "python"): rng.exponential(9, 20)}
    i = 0
    for (op, origin), values in durations.items():
        for j, ms in enumerate(values):
            i += 1
            obs.record(_op(i, op, origin, ok=j % 10 != 0, ms=float(ms), ts=now - dt.timedelta(seconds=i)))
    obs.record(_op(999, "a", "http", ms=1e6, ts=now - dt.timedelta(hours=3)))  # outside the window
    stats = {(s["op"], s["origin"]): s for s in obs.stats(3600)}
    assert set(stats) == set(durations)  # the ring buffer held 50: the rest came back from the files
    for key, values in durations.items():
        s, expect = stats[key], np.sort(values)
        assert s["count"] == len(values) and s["errors"] == len(range(0, len(values), 10))
        for p, name in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
            # the linear-interpolation percentile, computed here by hand
            rank = p / 100 * (len(expect) - 1)
            lo, frac = int(rank), rank - int(rank)
            want = expect[lo] + frac * (expect[min(lo + 1, len(expect) - 1)] - expect[lo])
            assert s[name] == pytest.approx(want, abs=1e-3)


def test_query_filters_newest_first(tmp_path: Path) -> None:
    obs = Observer(tmp_path, capacity=3)
    t0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    for i in range(8):
        obs.record(_op(i, "a" if i % 2 else "b", "http" if i < 4 else "sql", ok=i != 5, ts=t0 + dt.timedelta(minutes=i)))
    assert [o["id"] for o in obs.query(limit=3)] == ["id7", "id6", "id5"]
    assert [o["id"] for o in obs.query(op="a", origin="sql")] == ["id7", "id5"]
    assert [o["id"] for o in obs.query(status="error")] == ["id5"]
    assert [o["id"] for o in obs.query(since="2026-11-27T09:02:00", until="2026-11-27T09:04:00.000")] == \
        ["id4", "id3", "id2"]


def test_observer_routes_and_sql(hlake: lakehouse.Lake) -> None:
    hlake.query("SELECT 1")
    with pytest.raises(Exception):  # noqa: B017 - any failure: it is recorded as an error
        hlake.query("SELECT * FROM nowhere")
    hlake.observer.flush()
    rows = hlake.sql("SELECT op, ok, error_code FROM observer_ops() WHERE op = 'sql.query' ORDER BY ts").fetchall()
    assert rows == [("sql.query", True, None), ("sql.query", False, "sql_catalog")]
    agg = hlake.sql("SELECT op, count(*), quantile_cont(duration_ms, 0.95) > 0 FROM observer_ops() "
                    "WHERE op = 'sql.query' GROUP BY op").fetchall()
    assert agg == [("sql.query", 2, True)]
    ops = hlake.observed_ops(op="sql.query", status="error")
    assert len(ops) == 1 and ops[0]["error_code"] == "sql_catalog"
    assert {(s["op"], s["errors"]) for s in hlake.op_stats("1h")["ops"] if s["op"] == "sql.query"} == {("sql.query", 1)}
    with pytest.raises(InvalidInput, match="positive duration"):
        hlake.op_stats("soon")


def test_failed_ingests_and_damaged_sidecars_are_journalled(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        with pytest.raises(InvalidInput):
            lk.ingest(b"", "empty", filename="empty.csv")
        lk.create_corpus("c", rows=[{"id": i, "text": f"row {i}"} for i in range(30)])
        path = Path(lk.corpus("c")["generations"][0] and lk.sql(
            "SELECT path FROM lake.lh.index_generations WHERE corpus = 'c' AND active").fetchone()[0])
    path.write_bytes(b"garbage")
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        assert lk.vector_search("c", "row 3", 1)[0].id == "3"  # rebuilt from the lake table
        errors = lk.storage_errors()
        assert [e["kind"] for e in errors] == ["sidecar_corrupt", "ingest_failed"]
        assert errors[1]["target"] == "empty" and errors[1]["code"] == "empty_file"
        assert errors[1]["details"]["file"] == "empty.csv"
        sql = lk.sql("SELECT kind, target FROM storage_errors() ORDER BY ts").fetchall()
        assert sql == [("ingest_failed", "empty"), ("sidecar_corrupt", "c")]


def test_hnsw_trials_record_builds_and_rollbacks_with_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(3000, 32)).astype(np.float32)
    with lakehouse.open(tmp_path / "lake", embedder="hash", hnsw_trial_sample=50) as lk:
        lk.create_corpus("v", rows=[{"id": 0, "text": "seed"}])
        lk.add_to_corpus("v", [{"id": i, "text": f"r{i}"} for i in range(3000)],
                         embeddings=np.pad(vecs, ((0, 0), (0, 352))))
        out = lk.rebuild_index("v")
        assert 0.9 <= out["recall_at_10"] <= 1.0 and out["build_s"] > 0
        lk.rollback_index("v")
        trials = lk.hnsw_trials("v")
        assert [(t["event"], t["generation"]) for t in trials] == [("rollback", 1), ("build", 2), ("build", 1)]
        assert trials[1]["recall_at_10"] == out["recall_at_10"] and trials[1]["sample"] == 50
        assert trials[2]["recall_at_10"] is None  # one row: exact search, nothing to measure
        assert trials[1]["params"]["connectivity"] == 24
        assert lk.sql("SELECT count(*) FROM hnsw_trials() WHERE corpus = 'v'").fetchone()[0] == 3


def test_modes_are_checked_when_the_lake_opens(tmp_path: Path) -> None:
    bad = [
        ({"m": {"corpora": "a"}}, "modes.m.corpora"),
        ({"m": {"corpora": ["a"], "primary": "b"}}, "modes.m.primary"),
        ({"m": {"corpora": ["a"], "isolation": "nope"}}, "modes.m.isolation"),
        ({"m": {"corpora": ["a"], "colour": "red"}}, "modes.m"),
        ({"m": "a"}, "modes.m"),
    ]
    for modes, key in bad:
        with pytest.raises(SettingsError) as info:
            lakehouse.open(tmp_path / "lake", modes=modes)
        assert info.value.details["setting"] == key and key in info.value.message


def test_no_key_in_ops_files_logs_or_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-or-v1-SECRETSECRETSECRET0123456789"
    monkeypatch.setenv("OPENROUTER_API_KEY", key + "\n")  # a mounted secret's trailing newline
    caplog.set_level("DEBUG")
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        lk.query(f"SELECT '{key}' AS k")
        with pytest.raises(Exception) as info:  # noqa: B017
            lk.query(f"SELECT * FROM \"{key}\"")
        assert key not in str(info.value)
        lk.observer.flush()
        files = "".join(p.read_text() for p in (lk.root / "observer").glob("*.jsonl"))
        assert files.count('"op":"sql.query"') == 2 and "***" in files
        for text in (files, caplog.text, repr(lk.observed_ops()), str(lk.sql("SELECT * FROM observer_ops()").fetchall())):
            assert key not in text and key[:12] not in text


class _Receiver(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_ops_are_exported_as_otlp_spans(tmp_path: Path) -> None:
    _Receiver.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with lakehouse.open(tmp_path / "lake", embedder="hash", otlp_endpoint=url) as lk:
            lk.query("SELECT 1")
            with pytest.raises(Exception):  # noqa: B017
                lk.query("SELECT * FROM nowhere")
        # close() flushed the batch: it reached the receiver as an OTLP/HTTP protobuf export
        paths = {p for p, _, _ in _Receiver.requests}
        assert paths == {"/v1/traces"} and all(t == "application/x-protobuf" for _, t, _ in _Receiver.requests)
        spans = []
        for _, _, body in _Receiver.requests:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                service = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
                assert service == "lakehouse"
                spans += [s for ss in rs.scope_spans for s in ss.spans]
        assert [s.name for s in spans] == ["sql.query", "sql.query"]
        attrs = [{a.key: a.value.string_value for a in s.attributes} for s in spans]
        assert [a["lakehouse.origin"] for a in attrs] == ["python", "python"]
        assert spans[1].status.code == 2 and attrs[1]["lakehouse.error_code"] == "sql_catalog"  # STATUS_CODE_ERROR
        assert spans[0].end_time_unix_nano > spans[0].start_time_unix_nano
    finally:
        server.shutdown()
        server.server_close()

"""Vector search: corpora, SQL surface, hybrid filters, generations (swap/rollback), sidecar repair, cache."""

from __future__ import annotations

import hashlib
import logging
import threading

import duckdb
import numpy as np
import orjson
import pytest

import lakehouse
from lakehouse.engine.embedders import clear_cache, get_embedder
from lakehouse.engine.vectors import corpus as corpus_mod
from lakehouse.engine.vectors import hnsw
from lakehouse.errors import Conflict, InvalidInput, NotFound

WORKERS = """id,name,role,state,certs
1,Ann,Forklift Operator,IL,OSHA-10 Forklift
2,Bob,Pastry Chef,WI,ServSafe
3,Cy,Forklift Operator,WI,Forklift
4,Di,Registered Nurse,IL,CPR
5,Ed,Forklift Driver,IL,OSHA-10
6,Flo,Welder,OH,AWS D1.1
"""


@pytest.fixture
def hlake(tmp_path, write):
    """A lake whose default embedder is the deterministic hash embedder, with a workers corpus."""
    lk = lakehouse.open(tmp_path / "lake", embedder="hash")
    lk.ingest(write("workers.csv", WORKERS), "workers")
    lk.create_corpus("workers", dataset="workers", text=["role", "certs", "state"], metadata=["state"])
    yield lk
    lk.close()


def random_corpus(lk, name, n=3000, dim=384, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dim))
    vecs = centres[rng.integers(0, 30, n)] + 0.5 * rng.normal(size=(n, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    lk.create_corpus(name, sql="SELECT 1 AS id, 'x' AS text WHERE false")
    lk.add_to_corpus(name, [{"id": i, "text": f"row {i}"} for i in range(n)], embeddings=vecs)
    return vecs


def test_corpus_is_a_lake_table_with_a_sidecar(hlake):
    info = hlake.corpora()[0]
    assert (info["name"], info["rows"], info["active_generation"], info["dim"]) == ("workers", 6, 1, 384)
    rows = hlake.sql("SELECT id, text, metadata, len(embedding) FROM lake.lh_corpus.workers ORDER BY key").fetchall()
    assert rows[0] == ("1", "Forklift Operator. OSHA-10 Forklift. IL", '{"state":"IL"}', 384)
    gens = hlake.sql("SELECT generation, active, rows FROM lake.lh.index_generations").fetchall()
    assert gens == [(1, True, 6)]
    assert (hlake.root / "indexes" / "workers" / "1.usearch").is_file()


def test_python_and_sql_search_agree(hlake):
    hits = hlake.vector_search("workers", "forklift operator OSHA-10", 3)
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].id == "1"
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    sql = hlake.sql("SELECT id, score, rank FROM vector_search('workers', 'forklift operator OSHA-10', 3)").fetchall()
    assert [(r[0], r[2]) for r in sql] == [(h.id, h.rank) for h in hits]
    # a FLOAT[] query gives the same answer as the text it embeds
    by_vec = hlake.sql("SELECT id FROM vector_search('workers', embed('forklift operator OSHA-10'), 3)").fetchall()
    assert [r[0] for r in by_vec] == [h.id for h in hits]


def test_vector_as_text_parameter(hlake):
    """From Python a vector can travel as its JSON text (cheaper than a list parameter): same rows as FLOAT[]."""
    import orjson

    vec = hlake.vectors.query_vector("workers", "forklift operator OSHA-10")
    want = [h.id for h in hlake.vector_search("workers", vec, 3)]
    for param in (orjson.dumps(vec.tolist()).decode(), vec.tolist()):
        got = hlake.sql("SELECT id FROM vector_search('workers', ?, 3)", params=[param]).fetchall()
        assert [r[0] for r in got] == want


def test_parse_query_tells_vectors_from_text():
    from lakehouse.udfs.vectors import parse_query

    vec = parse_query("[1, 2.5, -3e-2]")
    assert vec.dtype == np.float32 and vec.tolist() == pytest.approx([1, 2.5, -0.03])
    for text in ('["forklift", "osha"]', "[1, 2", "[]", "[[1, 2], [3]]", "[1, null]", "[true, false]", "forklift [x]"):
        assert parse_query(text) == text, text


def test_hybrid_sql_join_with_ids_filter(hlake):
    rows = hlake.sql("""
        SELECT w.name, w.state, v.score
        FROM vector_search('workers', 'forklift operator with OSHA-10', 10,
                           ids := (SELECT list(id) FROM workers WHERE state = 'IL')) v
        JOIN workers w USING (id) ORDER BY v.rank""").fetchall()
    assert [r[1] for r in rows] == ["IL", "IL", "IL"]  # min(k, allowed rows), nothing else
    assert rows[0][0] in ("Ann", "Ed")
    assert hlake.sql("SELECT count(*) FROM vector_search('workers', 'x', 10, ids := [])").fetchone() == (0,)
    assert hlake.sql("SELECT count(*) FROM vector_search('workers', 'x', 10, ids := ['nope'])").fetchone() == (0,)


@pytest.mark.parametrize("ids", ["[1, 4, 5]", "['1', '4', '5']", "[1, NULL, 4, 5, 5]", "[1::UTINYINT, 4, 5]",
                                 "['1', NULL, '4', '5', 'nope']", "['1', '4', 'Zoë', '5', 'a\"b']", "['1', '4', '5', 'é']"])
def test_ids_filter_of_any_list_type(hlake, ids):
    """The ids list reaches the UDF as JSON text: integer, text, NULL-holding and duplicate lists all filter alike,
    in all three search macros."""
    # BM25 only returns rows that share a term with the query: the nurse (4) is not one of them
    for fn, want in (("vector_search", ["1", "4", "5"]), ("hybrid_search", ["1", "4", "5"]), ("text_search", ["1", "5"])):
        got = hlake.sql(f"SELECT id FROM {fn}('workers', 'forklift operator', 10, ids := {ids}) ORDER BY id").fetchall()
        assert [r[0] for r in got] == want, fn


def test_ids_filter_that_is_not_a_flat_list_is_refused(hlake):
    for bad in ("5", "[[1, 2], [4]]", "{'a': 1}"):
        with pytest.raises(InvalidInput, match="flat list of ids"):
            hlake.query(f"SELECT * FROM vector_search('workers', 'x', 10, ids := {bad})")


def test_hybrid_maps_the_id_filter_once(hlake, monkeypatch):
    calls = []
    real = corpus_mod.CorpusState.keys_for_ids
    monkeypatch.setattr(corpus_mod.CorpusState, "keys_for_ids", lambda self, ids: calls.append(1) or real(self, ids))
    hits = hlake.hybrid_search("workers", "forklift operator", 10, ids=["1", "4", "5"])
    assert sorted(h.id for h in hits) == ["1", "4", "5"] and len(calls) == 1


def test_parse_ids_reads_only_whole_flat_lists():
    from lakehouse.udfs.vectors import parse_ids

    assert parse_ids("[3,-1,2]").tolist() == [3, -1, 2] and parse_ids("[]").tolist() == []
    ids = np.random.default_rng(0).integers(-10**17, 10**17, 5000)
    parsed = parse_ids("[" + ",".join(map(str, ids)) + "]")
    assert parsed.dtype == np.int64 and np.array_equal(parsed, ids)  # the numba reader, not orjson
    assert parse_ids('["a",null,"b"]') == ["a", None, "b"] and parse_ids(None) is None
    # what the integer reader refuses goes to JSON: 19+ digits (may not fit an int64), floats, spaces
    assert parse_ids("[12345678901234567890,1]") == [12345678901234567890, 1]
    assert parse_ids("[1.5,2]") == [1.5, 2] and parse_ids("[ 1, 2]") == [1, 2]
    for bad in ("[1-2]", "[1,,2]", "[1,2,]", "[,1]", "[--1]", "[-]", "7", '{"a":1}', "[[1]]", "[1,2"):
        with pytest.raises(InvalidInput, match="flat list"):
            parse_ids(bad)


@pytest.mark.parametrize("spread", [1, 1000], ids=["dense", "sparse"])
def test_int_ids_mask_the_live_rows_of_known_ids(spread):
    from lakehouse.engine.vectors.int_ids import IntIds

    rng = np.random.default_rng(3)
    ints = rng.permutation(np.arange(-500, 1500) * spread)[:1500]  # holes and negatives in either case
    keys = np.arange(len(ints), dtype=np.int64) * 7
    live = np.ones(len(ints) * 7, dtype=bool)
    live[keys[::5]] = False  # rows removed since the index was built
    index = IntIds(ints, keys)
    assert index.dense == (spread == 1)
    known = dict(zip(ints.tolist(), keys.tolist()))
    probe = np.concatenate([ints[::3], [-10**18, 10**18, np.iinfo(np.int64).max, np.iinfo(np.int64).min],
                            np.arange(-600, 1600) * spread]).astype(np.int64)
    expected = sorted({known[v] for v in probe.tolist() if v in known and live[known[v]]})
    assert np.flatnonzero(index.mask(probe, live)).tolist() == expected
    assert not IntIds(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).mask(probe, live).any()
    low = np.iinfo(np.int64).min  # max - min wraps to -1: a subtraction before the range check would read table[-1]
    edge = IntIds(np.array([low, low + 1]), np.array([5, 6]))
    assert np.flatnonzero(edge.mask(np.array([np.iinfo(np.int64).max, low + 1]), np.ones(7, dtype=bool))).tolist() == [6]


def test_embed_sql_types(hlake):
    assert hlake.sql("SELECT typeof(embed('forklift'))").fetchone() == ("FLOAT[384]",)
    assert hlake.sql("SELECT len(embed('forklift', 'hash:64'))").fetchone() == (64,)
    vec = hlake.sql("SELECT embed('forklift')").fetchone()[0]
    assert abs(np.linalg.norm(vec) - 1) < 1e-5
    assert hlake.sql("SELECT embed(NULL) IS NULL").fetchone() == (True,)


def test_other_threads_and_the_read_only_path_have_the_functions(hlake):
    out = []
    t = threading.Thread(target=lambda: out.append(
        hlake.cursor().execute("SELECT count(*) FROM vector_search('workers', 'nurse', 2)").fetchone()))
    t.start()
    t.join()
    assert out == [(2,)]
    res = hlake.query("SELECT id FROM vector_search('workers', 'registered nurse CPR', 1)")
    assert res.rows == [["4"]]


def test_add_replace_and_remove(hlake):
    out = hlake.add_to_corpus("workers", [{"id": 7, "text": "Zamboni driver, ice rink"}])
    assert out == {"corpus": "workers", "added": 1, "replaced": 0, "rows": 7}
    assert hlake.vector_search("workers", "zamboni driver ice rink", 1)[0].id == "7"
    out = hlake.add_to_corpus("workers", [{"id": 7, "text": "Pastry chef"}])
    assert out["replaced"] == 1 and out["rows"] == 7
    assert hlake.vector_search("workers", "zamboni driver ice rink", 1)[0].score < 0.5
    assert hlake.vectors.remove_from_corpus("workers", [7]) == 1
    assert hlake.sql("SELECT count(*) FROM lake.lh_corpus.workers").fetchone() == (6,)
    with pytest.raises(InvalidInput, match="row 0"):
        hlake.add_to_corpus("workers", [{"text": "no id"}])


def test_corpus_errors(hlake):
    with pytest.raises(NotFound):
        hlake.vector_search("nope", "x", 3)
    with pytest.raises(InvalidInput, match="dimensions"):
        hlake.vector_search("workers", [0.1, 0.2], 3)
    with pytest.raises(InvalidInput, match="field 'k': Input should be greater than or equal to 0") as info:
        hlake.vector_search("workers", "x", -1)
    assert info.value.code == "invalid_k"
    with pytest.raises(Conflict):
        hlake.create_corpus("workers", dataset="workers", text="role")
    with pytest.raises(InvalidInput, match="column 'nope'"):
        hlake.create_corpus("w2", dataset="workers", text="nope")
    with pytest.raises(InvalidInput, match="invalid corpus name"):
        hlake.create_corpus("Bad Name", dataset="workers", text="role")
    # a relation from lake.sql runs when fetched, in DuckDB: its error is DuckDB's, message intact...
    with pytest.raises(duckdb.Error, match="no corpus named 'nope'"):
        hlake.sql("SELECT * FROM vector_search('nope', 'x', 3)").fetchall()
    # ...while the read-only path maps UDF errors back to the tree
    with pytest.raises(NotFound, match="no corpus named 'nope'"):
        hlake.query("SELECT * FROM vector_search('nope', 'x', 3)")


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_filtered_search_returns_k_with_high_recall(tmp_path, fraction):
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        vecs = random_corpus(lk, "rand")
        rng = np.random.default_rng(1)
        allowed = np.sort(rng.choice(len(vecs), int(len(vecs) * fraction), replace=False))
        hits_total, recall = 0, []
        for q in rng.normal(size=(20, 384)).astype(np.float32):
            q /= np.linalg.norm(q)
            hits = lk.vector_search("rand", q, 10, ids=allowed.tolist())
            exact = allowed[np.argsort(-(vecs[allowed] @ q))[:10]]
            assert len(hits) == 10 and {int(h.id) for h in hits} <= set(allowed.tolist())
            recall.append(len({int(h.id) for h in hits} & set(exact.tolist())) / 10)
            hits_total += len(hits)
        assert np.mean(recall) >= 0.98


@pytest.fixture
def key_mapping(monkeypatch):
    """(calls, the real keys_for_ids): records each CorpusState.id_mask call, the id -> row path; exact search
    only below 10 rows, so small corpora take the graph."""
    monkeypatch.setattr(corpus_mod, "EXACT_MIN_ROWS", 10)
    calls = []
    real = corpus_mod.CorpusState.id_mask
    monkeypatch.setattr(corpus_mod.CorpusState, "id_mask", lambda self, ids: calls.append(1) or real(self, ids))
    return calls, corpus_mod.CorpusState.keys_for_ids


def _unit_corpus(lk, ids, seed):
    """Corpus "w" of random unit vectors under `ids`: (the rng, afterwards, and the vectors)."""
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(len(ids), 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    lk.create_corpus("w", sql="SELECT 'x' AS id, 'x' AS text WHERE false")
    lk.add_to_corpus("w", [{"id": i, "text": ""} for i in ids], embeddings=vecs)
    return rng, vecs


def test_long_text_id_lists_filter_through_the_graph(tmp_path, key_mapping, monkeypatch):
    """Long lists of text ids are matched against HNSW candidates instead of being mapped to keys; the answer
    is the one the key path gives, and lists the graph cannot serve (mixed types, mostly unknown ids) fall
    back to it."""
    from lakehouse.engine.vectors import id_lists

    mapped, real = key_mapping
    hashed = []
    real_contains = id_lists.JsonStrings.contains
    monkeypatch.setattr(id_lists.JsonStrings, "contains", lambda self, c: hashed.append(1) or real_contains(self, c))
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        rng, vecs = _unit_corpus(lk, [f"w{i}" for i in range(2000)], 3)
        state = lk.vectors.state("w")
        chosen = np.sort(rng.choice(2000, 1000, replace=False))
        ids = [f"w{i}" for i in chosen] + ["w5", "nope"]  # a duplicate or unknown id changes nothing
        for q in vecs[:10] + 0.1:
            q = q / np.linalg.norm(q)
            mapped.clear()
            got = [h.id for h in lk.vector_search("w", q, 10, ids=ids)]
            assert not mapped and len(got) == 10 and set(got) <= set(ids)
            keys, _ = state.search(q, 10, real(state, ids))
            assert got == [f"w{k}" for k in keys]
            mapped.clear()  # the reference just mapped the ids
            # from SQL the list arrives as JSON text and is matched without a Python string per id
            sql = "SELECT id FROM vector_search('w', ?, 10, ids := ?::VARCHAR[]) ORDER BY rank"
            assert [r[0] for r in lk.sql(sql, [orjson.dumps(q.tolist()).decode(), ids]).fetchall()] == got
            assert not mapped and hashed
        mapped.clear()
        assert len(lk.vector_search("w", vecs[0], 10, ids=[*ids[:-1], 7])) == 10 and mapped  # not all text
        mapped.clear()
        few = ["w1", "w2", "w3"] + [f"none{i}" for i in range(1500)]  # long list, three known ids
        assert sorted(h.id for h in lk.vector_search("w", vecs[0], 10, ids=few)) == ["w1", "w2", "w3"] and mapped


def test_json_strings_match_exactly_what_a_python_set_would():
    from lakehouse.engine.vectors.id_lists import parse_json_strings

    rng = np.random.default_rng(11)
    pool = [f"d{i}" for i in range(3000)] + ["", "é", "Zoë 7", "中文", "a" * 300]
    listed = [pool[i] for i in rng.choice(len(pool), 1500)] + ["", "é", "中文"]  # repeats, prefixes of others
    strings = parse_json_strings(orjson.dumps(listed).decode())
    assert len(strings) == len(listed) and list(strings) == listed
    candidates = pool + ["d", "d10000", "é ", "x"]
    assert strings.contains(candidates).tolist() == [c in set(listed) for c in candidates]
    # what is not a plain list of strings is left to orjson
    for text in ('["a\\"b"]', '["a\\u00e9"]', '["a",1]', '["a", "b"]', '["a",null]', '["a",]', '["a"', "[]", '[["a"]]',
                 '["a"]x', '["\u0001"]'):
        assert parse_json_strings(text) is None, text


def test_dense_integer_ids_filter_through_a_mask(tmp_path, monkeypatch):
    """An int64 id array (what SQL's list(id) becomes) or a list of ints over dense integer ids becomes a mask of
    live rows in one numba pass, never a per-id lookup: same answer as the allowed keys found id by id, on either
    strategy, removed and replaced rows excluded, unknown and repeated ids harmless."""
    from lakehouse.engine.vectors import int_ids

    monkeypatch.setattr(corpus_mod, "EXACT_MIN_ROWS", 10)
    passes, per_id = [], []
    real_pass, real_text = int_ids._dense_mask, corpus_mod.CorpusState._text_keys
    monkeypatch.setattr(int_ids, "_dense_mask", lambda *a: passes.append(1) or real_pass(*a))
    monkeypatch.setattr(corpus_mod.CorpusState, "_text_keys", lambda self, ids: per_id.append(1) or real_text(self, ids))
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        rng, vecs = _unit_corpus(lk, list(range(2000)), 8)
        lk.vectors.remove_from_corpus("w", [3, 4])
        lk.add_to_corpus("w", [{"id": 5, "text": ""}], embeddings=-vecs[5:6])  # replaced: a new key, old one dead
        state = lk.vectors.state("w")
        for share in (0.02, 0.5):  # below and above EXACT_FRACTION
            chosen = np.sort(rng.choice(2000, int(2000 * share), replace=False))
            ids = np.concatenate([chosen, [3, 4, 5, 5, 9999, -1]]).astype(np.int64)
            allowed = np.array(sorted({state.key_of(i) for i in ids.tolist()} - {None}), dtype=np.int64)  # one by one
            for q in (vecs[3], -vecs[5], vecs[7]):
                passes.clear()
                per_id.clear()
                keys, scores = state.search_ids(q, 10, ids)
                assert passes and not per_id
                want_keys, want_scores = state.search(q, 10, allowed)
                assert keys.tolist() == want_keys.tolist() and np.allclose(scores, want_scores)
                assert state.search_ids(q, 10, ids.tolist())[0].tolist() == keys.tolist() and not per_id  # a list
                got = [state.ids[key] for key in keys]
                assert "3" not in got and "4" not in got and len(got) == 10
            assert state.ids[state.search_ids(-vecs[5], 1, ids)[0][0]] == "5"  # the replacement row's vector
            assert state.search_ids(vecs[0], 0, ids)[0].tolist() == []


def test_strategy_thresholds(tmp_path, monkeypatch):
    """Text ids take the graph from TEXT_IDS_GRAPH_FRACTION (mapping each id to its key is what costs), keys
    from EXACT_FRACTION; below them, exact search. Both answer min(k, allowed) rows from the allowed set."""
    monkeypatch.setattr(corpus_mod, "EXACT_MIN_ROWS", 10)
    graph, mapped = [], []
    real_hnsw, real_mask = corpus_mod.CorpusState._hnsw, corpus_mod.CorpusState.id_mask
    monkeypatch.setattr(corpus_mod.CorpusState, "_hnsw", lambda self, *a: graph.append(1) or real_hnsw(self, *a))
    monkeypatch.setattr(corpus_mod.CorpusState, "id_mask", lambda self, ids: mapped.append(1) or real_mask(self, ids))
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        rng = np.random.default_rng(5)
        vecs = rng.normal(size=(2000, 384)).astype(np.float32)
        lk.create_corpus("w", sql="SELECT 'x' AS id, 'x' AS text WHERE false")
        lk.add_to_corpus("w", [{"id": f"w{i}", "text": ""} for i in range(2000)], embeddings=vecs)
        state = lk.vectors.state("w")
        for share, via_graph in ((0.04, False), (0.08, True)):  # around TEXT_IDS_GRAPH_FRACTION (0.06)
            ids = [f"w{i}" for i in range(0, 2000, int(1 / share))]
            graph.clear()
            mapped.clear()
            hits = lk.vector_search("w", vecs[0], 10, ids=ids)
            assert len(hits) == 10 and {h.id for h in hits} <= set(ids)
            assert bool(graph) is via_graph and bool(mapped) is not via_graph, share
        for share, via_graph in ((0.0625, False), (0.1, True)):  # around EXACT_FRACTION (0.08), as keys
            allowed = np.arange(0, 2000, int(1 / share), dtype=np.int64)
            graph.clear()
            keys, _ = state.search(vecs[0], 10, allowed)
            assert len(keys) == 10 and set(keys.tolist()) <= set(allowed.tolist())
            assert bool(graph) is via_graph, share


def test_filtered_search_uses_hnsw_for_large_allowed_sets(tmp_path, monkeypatch):
    calls = []
    real = corpus_mod.CorpusState._hnsw
    monkeypatch.setattr(corpus_mod, "EXACT_MIN_ROWS", 10)
    monkeypatch.setattr(corpus_mod.CorpusState, "_hnsw", lambda self, *a: calls.append(1) or real(self, *a))
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        vecs = random_corpus(lk, "rand", n=2000)
        allowed = list(range(0, 2000, 2))  # 50 %: HNSW with oversampling
        hits = lk.vector_search("rand", vecs[4], 10, ids=allowed)
        assert calls and len(hits) == 10 and hits[0].id == "4"
        calls.clear()
        assert len(lk.vector_search("rand", vecs[4], 10, ids=[1, 3, 5])) == 3 and not calls  # tiny: exact


def test_index_type_defaults_and_checks(tmp_path):
    """Cos corpora get an i8 graph whose candidates are re-scored exactly; other metrics f16; i8 needs cos."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        vecs = random_corpus(lk, "rand", n=2000)
        state = lk.vectors.state("rand")
        assert state.meta["dtype"] == "i8" and str(state.generation.index.dtype).endswith("I8")
        rng = np.random.default_rng(5)
        recall = []
        for q in rng.normal(size=(20, 384)).astype(np.float32):
            q /= np.linalg.norm(q)
            hits = lk.vector_search("rand", q, 10)
            exact = np.argsort(-(vecs @ q))[:10]
            recall.append(len({int(h.id) for h in hits} & set(exact.tolist())) / 10)
            # scores are the f32 cosines, not the quantised distances the graph ranked by
            np.testing.assert_allclose([h.score for h in hits], [vecs[int(h.id)] @ q for h in hits], atol=1e-5)
        assert np.mean(recall) >= 0.98
        lk.create_corpus("l2", sql="SELECT 1 AS id, 'x' AS text", metric="l2sq")
        assert lk.vectors.state("l2").meta["dtype"] == "f16"
        with pytest.raises(InvalidInput, match="needs metric 'cos'"):
            lk.create_corpus("bad", sql="SELECT 1 AS id, 'x' AS text", metric="l2sq", dtype="i8")
        with pytest.raises(InvalidInput, match="field 'dtype': Input should be 'i8', 'f16' or 'f32'"):
            lk.create_corpus("bad", sql="SELECT 1 AS id, 'x' AS text", dtype="f8")
        assert "bad" not in {c["name"] for c in lk.corpora()}


def test_rebuild_and_rollback_flip_the_active_generation(hlake):
    assert hlake.rebuild_index("workers")["generation"] == 2
    assert hlake.sql("SELECT generation FROM lake.lh.index_generations WHERE active").fetchall() == [(2,)]
    hlake.add_to_corpus("workers", [{"id": 8, "text": "Crane operator IL"}])
    assert hlake.rollback_index("workers")["generation"] == 1
    assert hlake.sql("SELECT generation FROM lake.lh.index_generations WHERE active").fetchall() == [(1,)]
    # rows added after generation 1 was built are still found after the rollback
    assert hlake.vector_search("workers", "crane operator IL", 1)[0].id == "8"
    assert hlake.rollback_index("workers", 2)["generation"] == 2
    with pytest.raises(NotFound):
        hlake.rollback_index("workers", 99)


def test_searches_run_through_swaps_and_rollbacks_without_errors(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        vecs = random_corpus(lk, "rand", n=2000)
        errors, done, counts = [], threading.Event(), []

        def searcher(seed):
            rng = np.random.default_rng(seed)
            n = 0
            while not done.is_set():
                try:
                    hits = lk.vector_search("rand", vecs[rng.integers(0, len(vecs))], 5)
                    assert len(hits) == 5
                    n += 1
                except Exception as exc:  # collected and asserted below
                    errors.append(exc)
            counts.append(n)

        threads = [threading.Thread(target=searcher, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for _ in range(2):
            lk.rebuild_index("rand")
            lk.rollback_index("rand")
        done.set()
        for t in threads:
            t.join()
        assert not errors and min(counts) > 0


def test_reopen_catches_the_graph_up_with_rows_added_after_its_build(tmp_path):
    root = tmp_path / "lake"
    with lakehouse.open(root, embedder="hash") as lk:
        lk.create_corpus("c", sql="SELECT i AS id, 'row ' || i AS text FROM range(50) t(i)")
        lk.add_to_corpus("c", [{"id": 99, "text": "crane operator in Joliet"}])  # an incremental add: no new generation
    with lakehouse.open(root, embedder="hash") as lk:
        state = lk.vectors.state("c")
        key = state.key_of("99")
        assert state.generation.number == 1 and state.generation.max_key < key  # built before the add
        assert key in state.generation.index  # caught up
        assert lk.vector_search("c", "crane operator in Joliet", 1)[0].id == "99"


def test_corrupt_or_missing_sidecar_is_rebuilt(tmp_path, write, caplog):
    root = tmp_path / "lake"
    with lakehouse.open(root, embedder="hash") as lk:
        lk.ingest(write("workers.csv", WORKERS), "workers")
        lk.create_corpus("workers", dataset="workers", text=["role", "certs"])
        before = [h.id for h in lk.vector_search("workers", "forklift", 3)]
    sidecar = root / "indexes" / "workers" / "1.usearch"
    sidecar.write_bytes(b"garbage" * 100)
    with caplog.at_level(logging.WARNING), lakehouse.open(root, embedder="hash") as lk:
        assert [h.id for h in lk.vector_search("workers", "forklift", 3)] == before
        assert "corrupt" in caplog.text
        assert lk.corpora()[0]["active_generation"] == 2
    (root / "indexes" / "workers" / "2.usearch").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING), lakehouse.open(root, embedder="hash") as lk:
        assert [h.id for h in lk.vector_search("workers", "forklift", 3)] == before
        assert "missing" in caplog.text


def test_corpora_lists_each_corpus_with_its_own_rows_and_generations(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        lk.create_corpus("a", sql="SELECT 1 AS id, 'alpha' AS text")
        lk.create_corpus("b", sql="SELECT i AS id, 'beta ' || i AS text FROM range(3) t(i)")
        lk.rebuild_index("b")
        listed = lk.corpora()
        assert [(c["name"], c["rows"], c["active_generation"]) for c in listed] == [("a", 1, 1), ("b", 3, 2)]
        assert [g["generation"] for g in listed[1]["generations"]] == [1, 2] and len(listed[0]["generations"]) == 1
        assert listed[1] == {**lk.vectors.describe("b"), "follow": None}  # the listing adds whom it follows
        lk.drop_corpus("a")
        assert [c["name"] for c in lk.corpora()] == ["b"]
        with pytest.raises(NotFound):
            lk.vectors.describe("a")


def test_adds_to_different_corpora_do_not_share_a_lock(tmp_path):
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        lk.create_corpus("a", sql="SELECT 1 AS id, 'alpha' AS text")
        lk.create_corpus("b", sql="SELECT 1 AS id, 'beta' AS text")
        state_a = lk.vectors.state("a")
        finished = threading.Event()
        with state_a.lock:  # corpus a is busy (e.g. a long add or rebuild)
            t = threading.Thread(target=lambda: (lk.add_to_corpus("b", [{"id": 2, "text": "gamma"}]), finished.set()))
            t.start()
            assert finished.wait(30), "an add to corpus b waited for corpus a's lock"
            t.join()
        assert lk.corpora()[1]["rows"] == 2


def test_parallel_adds_queue_for_the_commit_instead_of_colliding(tmp_path, caplog):
    """Writers of one process take turns at the lake commit (the SQLite catalog admits one), so parallel adds
    rarely collide and sleep through the retry backoff (a commit can still meet another thread's catalog read:
    it is retried); every row lands."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        for c in "abcd":
            lk.create_corpus(c, sql="SELECT 'x' AS id, 'x' AS text WHERE false")
        caplog.set_level(logging.INFO, logger="lakehouse.engine.catalog")

        def adds(c):
            for b in range(5):
                lk.add_to_corpus(c, [{"id": f"{c}{b}-{i}", "text": f"row {b} {i}", "metadata": {"b": b}}
                                     for i in range(200)])

        threads = [threading.Thread(target=adds, args=(c,)) for c in "abcd"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len([r for r in caplog.records if "collided" in r.getMessage()]) <= 2  # of 20 commits
        assert [c["rows"] for c in lk.corpora()] == [1000] * 4


def test_id_lookup_kept_up_to_date_by_adds_replaces_and_removes(tmp_path):
    """The id -> key dict is maintained by each add/remove (not rebuilt): it must equal a fresh build."""
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        lk.create_corpus("w", sql="SELECT 'x' AS id, 'x' AS text WHERE false")
        lk.add_to_corpus("w", [{"id": f"w{i}", "text": f"t{i}"} for i in range(50)])
        state = lk.vectors.state("w")
        state.keys_for_ids(["w1"])  # builds the lookup; from here on it is maintained
        lk.add_to_corpus("w", [{"id": f"w{i}", "text": f"new {i}"} for i in range(40, 60)])  # 10 replaced
        lk.vectors.remove_from_corpus("w", ["w3", "w45", "w59"])
        lk.add_to_corpus("w", [{"id": "w3", "text": "back"}])
        kept = dict(state._lookup)
        state._lookup = None
        assert kept == state._id_lookup() and len(kept) == 58
        assert {h.id for h in lk.vector_search("w", "new 41", 5, ids=["w41", "w45", "w3"])} == {"w41", "w3"}
        # None matches nothing; a value that cannot be an id is refused, naming it
        assert {h.id for h in lk.vector_search("w", "new 41", 5, ids=["w41", None, "w3"])} == {"w41", "w3"}
        with pytest.raises(InvalidInput, match=r"ids\[2\] must be a string or a number") as info:
            lk.vector_search("w", "new 41", 5, ids=["w41", None, {"a": 1}, ["w3"], "w3"])
        assert info.value.code == "invalid_ids"


def test_embedding_cache_skips_unchanged_texts(tmp_path, monkeypatch):
    clear_cache()
    emb = get_embedder("hash")
    seen: list[int] = []
    real = type(emb)._embed_batch
    monkeypatch.setattr(type(emb), "_embed_batch", lambda self, texts: seen.append(len(texts)) or real(self, texts))
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        first = lk.embed(["forklift", "nurse", "forklift"])
        assert sum(seen) == 2  # duplicates embedded once
        again = lk.embed(["nurse", "forklift", "welder"])
        assert sum(seen) == 3  # only 'welder' is new
        np.testing.assert_allclose(again[1], first[0])
        assert lk.sql("SELECT count(*) FROM lake.lh.embedding_cache").fetchone() == (3,)


def test_minilm_default_embedder_end_to_end(tmp_path, write):
    with lakehouse.open(tmp_path / "lake") as lk:
        lk.ingest(write("workers.csv", WORKERS), "workers")
        lk.create_corpus("workers", dataset="workers", text=["role", "certs", "state"])
        assert lk.corpora()[0]["embedder"] == "minilm"
        top = lk.sql("SELECT w.name FROM vector_search('workers', 'warehouse lift truck driver', 2) v "
                     "JOIN workers w USING (id) ORDER BY v.rank").fetchall()
        assert {r[0] for r in top} <= {"Ann", "Cy", "Ed"}
        assert lk.sql("SELECT typeof(embed('x'))").fetchone() == ("FLOAT[384]",)


def test_text_and_hybrid_search_in_sql(hlake):
    bm25 = hlake.sql("SELECT id, rank FROM text_search('workers', 'registered nurse', 3)").fetchall()
    assert bm25[0] == ("4", 1)
    assert [h.id for h in hlake.text_search("workers", "registered nurse", 3)] == [r[0] for r in bm25]
    rows = hlake.query("SELECT id FROM hybrid_search('workers', 'forklift OSHA-10', 3, "
                       "ids := ['1', '4', '5'], fusion := 'linear')").rows
    assert {r[0] for r in rows} == {"1", "4", "5"} and rows[0][0] in ("1", "5")
    with pytest.raises(InvalidInput, match="field 'fusion': Input should be 'rrf' or 'linear'"):
        hlake.query("SELECT * FROM hybrid_search('workers', 'x', 3, fusion := 'max')")


def test_a_copy_of_another_nodes_generation_is_checked_before_use(tmp_path, caplog):
    """Two roots on one catalog and data path (two nodes): the second makes its own copy of the generation the
    first built, with a checksum beside it; a damaged copy is found by that checksum and rebuilt, never used."""
    where = {"catalog": f"sqlite:{tmp_path / 'catalog.sqlite'}", "data_path": str(tmp_path / "data")}
    with lakehouse.open(tmp_path / "a", embedder="hash", **where) as lk:
        lk.create_corpus("c", rows=[{"id": str(i), "text": f"row {i} text"} for i in range(300)])
    copy = tmp_path / "b" / "indexes" / "c" / "1.usearch"
    with lakehouse.open(tmp_path / "b", embedder="hash", **where) as lk:
        assert lk.vector_search("c", "row 42 text", 1)[0].id == "42"
    good = copy.read_bytes()
    assert copy.with_suffix(".sha256").read_text().strip() == hashlib.sha256(good).hexdigest()
    copy.write_bytes(good[:-64] + b"x" * 64)  # same size, damaged tail
    with caplog.at_level(logging.WARNING), lakehouse.open(tmp_path / "b", embedder="hash", **where) as lk:
        assert lk.vector_search("c", "row 42 text", 1)[0].id == "42"
        assert f"{copy} is corrupt" in caplog.text
        assert [g["generation"] for g in lk.corpus("c")["generations"]] == [1]  # no new generation in the catalog
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == copy.with_suffix(".sha256").read_text().strip()


def test_writers_of_one_sidecar_path_never_rename_each_others_half_written_file(tmp_path):
    """Two processes on one root may save the same generation's sidecar at once: each writes a temporary file
    of its own, so the file in place is always one whole index, and whose checksum the writer returned."""
    rng = np.random.default_rng(0)
    indexes = [hnsw.build(rng.normal(size=(2000, 64)).astype(np.float32), np.arange(2000), metric="l2sq",
                          dtype="f32", params=hnsw.DEFAULT_PARAMS, threads=1) for _ in range(2)]
    path = tmp_path / "indexes" / "c" / "1.usearch"
    digests: set[str] = set()
    errors: list[BaseException] = []

    def save(index):
        try:
            for _ in range(20):
                digests.add(hnsw.save(index, path))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(ix,)) for ix in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert hnsw.file_sha256(path) in digests and len(digests) == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["1.usearch"]  # no temporary file left behind

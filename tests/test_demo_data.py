from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lakehouse.engine import demo_data as dd

ROWS = 5_000


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return dd.generate(ROWS, seed=7)


def test_row_counts_and_schemas(tables):
    assert {k: t.num_rows for k, t in tables.items()} == {
        "workers": ROWS, "candidates": ROWS // 5, "job_orders": 50, "placements": ROWS // 10}
    assert tables["workers"].schema == dd.WORKERS_SCHEMA
    assert tables["candidates"].column_names == ["id", "name", "role", "state", "city", "years_experience",
                                                 "resume", "source", "applied_at"]
    assert tables["job_orders"].column_names == ["id", "client", "role", "state", "city", "headcount", "start_date",
                                                 "hourly_rate", "required_certifications", "notes", "status"]
    assert tables["placements"].column_names == ["id", "job_order_id", "worker_id", "placed_at", "end_at",
                                                 "outcome", "rating"]
    jo, pl = tables["job_orders"].schema, tables["placements"].schema
    assert jo.field("start_date").type == pa.date32()
    assert jo.field("required_certifications").type == pa.list_(pa.string())
    assert pl.field("end_at").type == pa.timestamp("us") and pl.field("rating").type == pa.int32()
    assert tables["candidates"].schema.field("applied_at").type == pa.timestamp("us")
    assert dd.generate(100)["job_orders"].num_rows == 50
    assert dd.generate(20_000)["job_orders"].num_rows == 200


def test_same_seed_identical_other_seed_differs(tables):
    again = dd.generate(ROWS, seed=7)
    for name, table in tables.items():
        assert table.equals(again[name]), name
    other = dd.generate(ROWS, seed=8)
    for name, table in tables.items():
        assert not table.equals(other[name]), name


def test_referential_integrity(tables):
    w, j, p = tables["workers"], tables["job_orders"], tables["placements"]
    for t in tables.values():
        ids = t["id"].to_numpy()
        assert (ids == np.arange(1, t.num_rows + 1)).all()
    assert pc.all(pc.is_in(p["worker_id"], value_set=w["id"])).as_py()
    assert pc.all(pc.is_in(p["job_order_id"], value_set=j["id"])).as_py()
    worker_role = np.asarray(w["role"].to_pylist())[p["worker_id"].to_numpy() - 1]
    job_role = np.asarray(j["role"].to_pylist())[p["job_order_id"].to_numpy() - 1]
    assert (worker_role == job_role).mean() > 0.8


def test_value_domains(tables):
    w, c, j, p = (tables[k] for k in ("workers", "candidates", "job_orders", "placements"))
    for t in (w, c, j):
        for state, city in zip(t["state"].to_pylist(), t["city"].to_pylist()):
            assert city in dd.STATES[state][1]
        assert set(t["role"].to_pylist()) <= set(dd.ROLES)
    assert len(set(w["role"].to_pylist())) >= 20
    assert len(set(w["state"].to_pylist())) >= 12
    assert set(w["availability"].to_pylist()) == set(dd.AVAILABILITY)
    lens = pc.list_value_length(w["certifications"]).to_numpy()
    assert lens.min() == 0 and lens.max() <= 4
    assert set(pc.list_flatten(w["certifications"]).to_pylist()) <= set(dd.CERTS)
    years = w["years_experience"].to_numpy()
    assert years.min() >= 0 and years.max() <= 30 and np.median(years) < 8
    rates = w["hourly_rate"].to_numpy()
    assert (rates > 10).all() and np.allclose(rates, np.round(rates, 2))
    assert pc.min(w["updated_at"]).as_py().year == 2025 and pc.max(w["updated_at"]).as_py().year == 2026
    assert set(c["source"].to_pylist()) == set(dd.SOURCES)
    h = j["headcount"].to_numpy()
    assert h.min() >= 1 and h.max() <= 25
    assert set(j["status"].to_pylist()) <= set(dd.STATUSES)
    assert set(j["client"].to_pylist()) <= set(dd.CLIENTS)
    assert pc.max(pc.list_value_length(j["required_certifications"])).as_py() <= 2
    assert set(p["outcome"].to_pylist()) == set(dd.OUTCOMES)
    ratings = [r for r in p["rating"].to_pylist() if r is not None]
    assert ratings and min(ratings) >= 1 and max(ratings) <= 5
    for row in p.to_pylist():
        assert (row["end_at"] is None) == (row["outcome"] == "active")
        assert row["end_at"] is None or row["end_at"] >= row["placed_at"]
        if row["outcome"] == "no-show":
            assert row["rating"] is None


def test_role_aware_certifications(tables):
    rows = tables["workers"].to_pylist()
    forklift = [r for r in rows if r["role"] == "Forklift Operator"]
    assert sum("Forklift" in r["certifications"] for r in forklift) / len(forklift) > 0.8
    assert sum("OSHA-10" in r["certifications"] for r in forklift) / len(forklift) > 0.35
    cooks = [r for r in rows if r["role"] == "Line Cook"]
    assert not any("CDL-A" in r["certifications"] for r in cooks)


def test_forklift_osha10_in_illinois():
    w = dd.generate(50_000)["workers"]
    il = w.filter(pc.and_(pc.equal(w["role"], "Forklift Operator"), pc.equal(w["state"], "IL"))).to_pylist()
    hits = [r for r in il if "OSHA-10" in r["certifications"]]
    assert len(hits) >= 100
    assert len({r["city"] for r in hits}) >= 5


def test_resumes_and_notes(tables):
    resumes = tables["candidates"]["resume"].to_pylist()
    assert len(set(resumes)) > 0.95 * len(resumes)
    for text, role in zip(resumes, tables["candidates"]["role"].to_pylist()):
        assert role in text
        sentences = len(re.findall(r"\.(?= [A-Z0-9])|\.$", text)) - text.count("St. ")
        assert 3 <= sentences <= 6, text
        assert not re.search(r"\b1 years", text)
    for row in tables["job_orders"].to_pylist():
        assert row["client"] in row["notes"] and row["role"] in row["notes"] and "$" in row["notes"]


def test_profiles_match_scalar(tables):
    w = tables["workers"].slice(0, 300)
    vec = dd.profiles(w)
    assert isinstance(vec, pa.Array) and len(vec) == 300
    assert vec.to_pylist() == [dd.worker_profile(r) for r in w.to_pylist()]
    row = {"role": "Forklift Operator", "city": "Joliet", "state": "IL", "years_experience": 7,
           "certifications": ["OSHA-10", "Forklift"], "availability": "immediate"}
    assert dd.worker_profile(row) == ("Forklift Operator in Joliet, IL. 7 years experience. "
                                      "Certifications: OSHA-10, Forklift. Available: immediate.")
    table = pa.Table.from_pylist([row, {**row, "years_experience": 1, "certifications": []}],
                                 schema=pa.schema([f for f in dd.WORKERS_SCHEMA if f.name in row]))
    assert dd.profiles(table).to_pylist()[1] == (
        "Forklift Operator in Joliet, IL. 1 year experience. Certifications: none. Available: immediate.")


def test_workers_delta(tables):
    w = tables["workers"]
    delta = dd.workers_delta(tables, n=200, seed=8)
    assert delta.schema == w.schema
    assert delta.equals(dd.workers_delta(tables, n=200, seed=8))
    ids = delta["id"].to_numpy()
    assert len(set(ids)) == len(ids)
    old_ids, new_ids = ids[ids <= ROWS], ids[ids > ROWS]
    assert len(old_ids) == 200 and len(new_ids) == 20
    assert (np.sort(new_ids) == np.arange(ROWS + 1, ROWS + 21)).all()
    by_id = {r["id"]: r for r in w.to_pylist()}
    for row in delta.to_pylist()[:200]:
        orig = by_id[row["id"]]
        assert row["updated_at"] > orig["updated_at"]
        assert row["availability"] != orig["availability"] and row["hourly_rate"] != orig["hourly_rate"]
        assert (row["name"], row["role"], row["city"]) == (orig["name"], orig["role"], orig["city"])
        assert row["updated_at"].year <= 2026


def test_write_parquet_and_csv(tables, tmp_path):
    paths = dd.write(tables, tmp_path / "pq")
    assert set(paths) == set(tables)
    for name, path in paths.items():
        assert path.suffix == ".parquet" and pq.read_table(path).equals(tables[name])
    paths = dd.write(tables, tmp_path / "csv", format="csv")
    for name, path in paths.items():
        assert path.suffix == ".csv" and pacsv.read_csv(path).num_rows == tables[name].num_rows
    certs = duckdb.sql(f"select certifications::VARCHAR[] c from read_csv('{paths['workers']}') order by id").fetchall()
    assert [c[0] for c in certs] == tables["workers"]["certifications"].to_pylist()
    with pytest.raises(ValueError):
        dd.write(tables, tmp_path, format="json")


def test_silent(capsys):
    dd.generate(50_000, seed=1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""

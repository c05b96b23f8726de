"""Validation rules: every kind passing and failing, bad definitions, injection attempts, storage in
the lake, and refusing an ingest-like transaction atomically."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from lakehouse.engine import validator
from lakehouse.engine.validator import parse_rule, raise_for_errors, validate
from lakehouse.errors import InvalidInput, Unprocessable

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def cur():
    con = duckdb.connect()
    con.execute("""CREATE TABLE workers AS SELECT * FROM (VALUES
        (1, 'Ann',  'IL', 31, 'ann@example.com', TIMESTAMP '2025-03-10 08:00:00', DATE '2025-03-09', 10),
        (2, 'Bob',  'WI', 45, 'bob@example.com', TIMESTAMP '2025-03-09 08:00:00', DATE '2025-03-01', 20),
        (3, 'Cy',   'IL', 17, 'cy-at-example',   TIMESTAMP '2025-03-01 08:00:00', DATE '2025-02-01', 30),
        (4, NULL,   'XX', 70, NULL,              NULL,                            NULL,               99)
    ) AS t(id, name, state, age, email, seen_at, hired, site_id)""")
    con.execute("CREATE SCHEMA ref")
    con.execute("CREATE TABLE ref.sites AS SELECT * FROM (VALUES (10, 'Joliet'), (20, 'Aurora'), (30, 'Cicero')) "
                "AS t(site_id, name)")
    con.execute("CREATE TABLE ref.site_names AS SELECT * FROM (VALUES ('10'), ('20')) AS t(code)")
    yield con
    con.close()


def rule(kind: str, severity: str = "error", **params) -> validator.Rule:
    return parse_rule({"dataset": "workers", "name": f"r_{kind}", "kind": kind, "params": params, "severity": severity})


def check(cur, r: validator.Rule) -> validator.RuleResult:
    [result] = validate(cur, "workers", [r], now=NOW, ref_schema="memory.ref")
    return result


# -- each kind, passing and failing ------------------------------------------------------------------


def test_schema_passes_with_type_aliases(cur):
    assert check(cur, rule("schema", column="id", type="int")).passed
    assert check(cur, rule("schema", column="name", type="string")).passed


def test_schema_fails_for_wrong_type_and_missing_column(cur):
    wrong = check(cur, rule("schema", column="age", type="VARCHAR"))
    assert not wrong.passed and wrong.sample == [{"column": "age", "expected": "VARCHAR", "actual": "INTEGER"}]
    missing = check(cur, rule("schema", column="salary", type="DOUBLE"))
    assert not missing.passed and "missing" in missing.message


def test_not_null(cur):
    assert check(cur, rule("not_null", column="id")).passed
    failed = check(cur, rule("not_null", column="name"))
    assert (failed.passed, failed.count, failed.sample[0]["id"]) == (False, 1, 4)


def test_unique(cur):
    assert check(cur, rule("unique", column="id")).passed
    failed = check(cur, rule("unique", columns=["state"]))
    assert (failed.passed, failed.count) == (False, 2)
    assert failed.sample == [{"key": {"state": "IL"}, "rows": 2}]


def test_unique_ignores_keys_with_nulls(cur):
    cur.execute("INSERT INTO workers VALUES (5, NULL, 'XX', 1, NULL, NULL, NULL, 10)")
    assert check(cur, rule("unique", columns=["name", "state"])).passed


def test_range_numbers(cur):
    assert check(cur, rule("range", column="age", min=0, max=120)).passed
    failed = check(cur, rule("range", column="age", min=18, max=65))
    assert (failed.passed, failed.count) == (False, 2)
    assert [row["age"] for row in failed.sample] == [17, 70]  # ORDER BY ALL


def test_range_timestamps(cur):
    assert check(cur, rule("range", column="hired", min="2025-01-01")).passed
    failed = check(cur, rule("range", column="seen_at", max="2025-03-09T23:59:59"))
    assert (failed.passed, failed.count) == (False, 1)


def test_range_counts_values_that_do_not_compare(cur):
    failed = check(cur, rule("range", column="name", min=0))  # text is not a number
    assert (failed.passed, failed.count) == (False, 3)


def test_allowed_strings_numbers_booleans(cur):
    assert check(cur, rule("allowed", column="site_id", values=[10, 20, 30, 99])).passed
    failed = check(cur, rule("allowed", column="state", values=["IL", "WI"]))
    assert (failed.passed, failed.count, failed.sample[0]["state"]) == (False, 1, "XX")
    cur.execute("CREATE TABLE flags AS SELECT * FROM (VALUES (true), (false)) t(ok)")
    [res] = validate(cur, "flags", [rule("allowed", column="ok", values=[True])])
    assert (res.passed, res.count) == (False, 1)


def test_regex_full_match(cur):
    assert check(cur, rule("regex", column="state", pattern="[A-Z]{2}")).passed
    failed = check(cur, rule("regex", column="email", pattern=r"[^@]+@[^@]+\.[a-z]+"))
    assert (failed.passed, failed.count, failed.sample[0]["email"]) == (False, 1, "cy-at-example")


def test_row_count(cur):
    assert check(cur, rule("row_count", min=1, max=10)).passed
    failed = check(cur, rule("row_count", max=3))
    assert (failed.passed, failed.count, failed.message) == (False, 4, "4 rows, expected [-inf, 3]")


def test_freshness(cur):
    assert check(cur, rule("freshness", column="seen_at", max_age_hours=6)).passed
    stale = check(cur, rule("freshness", column="hired", max_age_hours=24))
    assert not stale.passed and stale.sample[0]["age_hours"] == 36.0


def test_freshness_without_values_fails(cur):
    cur.execute("CREATE TABLE empty AS SELECT TIMESTAMP '2025-01-01' AS ts WHERE false")
    [res] = validate(cur, "empty", [rule("freshness", column="ts", max_age_hours=1)], now=NOW)
    assert not res.passed and res.count is None and "no timestamp" in res.message


def test_references(cur):
    assert check(cur, rule("references", column="site_id", dataset="sites")).passed is False  # 99 is not a site
    failed = check(cur, rule("references", column="site_id", dataset="sites"))
    assert (failed.count, failed.sample[0]["site_id"]) == (1, 99)
    cur.execute("DELETE FROM workers WHERE site_id = 99")
    assert check(cur, rule("references", column="site_id", dataset="sites")).passed


def test_references_compare_as_text_across_types(cur):
    failed = check(cur, rule("references", column="site_id", dataset="site_names", ref_column="code"))
    assert (failed.passed, failed.count) == (False, 2)  # 30 and 99


def test_references_missing_dataset_or_column_fail_without_raising(cur):
    gone = check(cur, rule("references", column="site_id", dataset="nowhere"))
    assert not gone.passed and gone.count is None and "does not exist" in gone.message
    col = check(cur, rule("references", column="site_id", dataset="sites", ref_column="nope"))
    assert not col.passed and "'nope'" in col.message


def test_missing_column_fails_the_rule(cur):
    res = check(cur, rule("not_null", column="salary"))
    assert (res.passed, res.count) == (False, None) and "salary" in res.message


# -- definitions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "field"), [
    ({"kind": "not_null", "params": {"column": "x"}}, "dataset"),
    ({"dataset": "w", "name": "Bad Name", "kind": "not_null", "params": {"column": "x"}}, "name"),
    ({"dataset": "w", "name": "r", "kind": "nope"}, "kind"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": {"column": "x"}, "severity": "fatal"}, "severity"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": {"column": "x"}, "owner": "me"}, "owner"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": "{oops"}, "params"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": {}}, "params.column"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": {"column": "x", "min": 1}}, "params.min"),
    ({"dataset": "w", "name": "r", "kind": "not_null", "params": {"column": ""}}, "params.column"),
    ({"dataset": "w", "name": "r", "kind": "unique", "params": {}}, "params.columns"),
    ({"dataset": "w", "name": "r", "kind": "unique", "params": {"columns": []}}, "params.columns"),
    ({"dataset": "w", "name": "r", "kind": "range", "params": {"column": "x"}}, "params.min"),
    ({"dataset": "w", "name": "r", "kind": "range", "params": {"column": "x", "min": 5, "max": 1}}, "params.min"),
    ({"dataset": "w", "name": "r", "kind": "range", "params": {"column": "x", "min": 1, "max": "2025-01-01"}},
     "params.max"),
    ({"dataset": "w", "name": "r", "kind": "range", "params": {"column": "x", "min": "soon"}}, "params.min"),
    ({"dataset": "w", "name": "r", "kind": "allowed", "params": {"column": "x", "values": ["a", 1]}}, "params.values"),
    ({"dataset": "w", "name": "r", "kind": "allowed", "params": {"column": "x", "values": []}}, "params.values"),
    ({"dataset": "w", "name": "r", "kind": "regex", "params": {"column": "x", "pattern": "(unclosed"}},
     "params.pattern"),
    ({"dataset": "w", "name": "r", "kind": "row_count", "params": {"min": -1}}, "params.min"),
    ({"dataset": "w", "name": "r", "kind": "freshness", "params": {"column": "x", "max_age_hours": 0}},
     "params.max_age_hours"),
    ({"dataset": "w", "name": "r", "kind": "references", "params": {"column": "x", "dataset": "Sites!"}},
     "params.dataset"),
    ({"dataset": "w", "name": "r", "kind": "schema", "params": {"column": "x", "type": "NOTATYPE"}}, "params.type"),
])
def test_bad_definitions_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        parse_rule(raw)
    assert err.value.details["field"] == field
    assert field in err.value.message


# -- injection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["INTEGER); DROP TABLE workers; --", "VARCHAR' OR '1'='1", "INT[] , (SELECT 1)"])
def test_type_names_that_are_not_types_are_refused(type_name):
    with pytest.raises(InvalidInput) as err:
        parse_rule({"dataset": "w", "name": "r", "kind": "schema", "params": {"column": "x", "type": type_name}})
    assert err.value.details["field"] == "params.type"


def test_values_and_patterns_are_bound_not_spliced(cur):
    evil = "IL') OR 1=1; DROP TABLE workers; --"
    res = check(cur, rule("allowed", column="state", values=[evil]))
    assert (res.passed, res.count) == (False, 4)
    res = check(cur, rule("regex", column="state", pattern="'; DROP TABLE workers; --"))
    assert res.count == 4
    with pytest.raises(InvalidInput, match="params.min"):
        rule("range", column="hired", min="2025-01-01' OR TRUE --")
    assert cur.execute("SELECT count(*) FROM workers").fetchone()[0] == 4


def test_column_names_are_quoted(cur):
    res = check(cur, rule("not_null", column='id" IS NULL OR 1=1; DROP TABLE workers; --'))
    assert (res.passed, res.count) == (False, None) and "is not in" in res.message
    cur.execute('CREATE TABLE odd AS SELECT 1 AS "my col", NULL AS "a""b"')
    [ok, nul] = validate(cur, "odd", [rule("not_null", column="my col"), rule("not_null", column='a"b')])
    assert ok.passed and (nul.passed, nul.count) == (False, 1)
    assert cur.execute("SELECT count(*) FROM workers").fetchone()[0] == 4


@pytest.mark.parametrize("relation", ["workers; DROP TABLE workers", "a.b.c.d", 'x"y', "", "lake.main.", "1abc"])
def test_relation_names_are_checked(cur, relation):
    with pytest.raises(InvalidInput, match="relation"):
        validate(cur, relation, [])


# -- errors, storage, the ingest hook ----------------------------------------------------------------


def test_raise_for_errors_only_for_failed_error_rules(cur):
    results = validate(cur, "workers", [rule("not_null", "warn", column="name"), rule("unique", column="id")])
    raise_for_errors(results)  # a failed warn rule only reports
    results = validate(cur, "workers", [rule("not_null", column="name")])
    with pytest.raises(Unprocessable) as err:
        raise_for_errors(results)
    assert err.value.code == "validation_failed" and err.value.details["failures"][0]["rule"] == "r_not_null"
    assert results[0].to_dict()["sample"][0]["seen_at"] is None


def test_rules_in_the_lake_and_an_ingest_refused_atomically(lake):
    rules = [parse_rule({"dataset": "people", "name": "id_unique", "kind": "unique", "params": {"column": "id"}}),
             parse_rule({"dataset": "people", "name": "has_name", "kind": "not_null", "params": {"column": "name"},
                         "severity": "warn"})]
    cur = lake.cursor()
    assert validator.load_rules(cur, "people") == []
    lake.ctx.transaction(cur, lambda c: validator.put_rules(c, rules))
    lake.ctx.transaction(cur, lambda c: validator.put_rules(c, rules[:1]))  # replace by name, no duplicate
    assert validator.load_rules(cur, "people") == sorted(rules, key=lambda r: r.name)

    def ingest(rows: str):
        def body(c):
            c.execute(f"CREATE OR REPLACE TABLE lake.main.people AS SELECT * FROM (VALUES {rows}) t(id, name)")
            results = validate(c, "lake.main.people", validator.load_rules(c, "people"))
            raise_for_errors(results)
            return results
        return lake.ctx.transaction(cur, body)

    results = ingest("(1, 'Ann'), (2, NULL)")
    assert [(r.rule, r.passed) for r in results] == [("has_name", False), ("id_unique", True)]
    with pytest.raises(Unprocessable, match="id_unique"):
        ingest("(1, 'Ann'), (1, 'Bob'), (3, 'Cy')")
    assert cur.execute("SELECT count(*) FROM lake.main.people").fetchone()[0] == 2  # the refused state never landed
    assert lake.ctx.transaction(cur, lambda c: validator.delete_rule(c, "people", "has_name")) is True
    assert [r.name for r in validator.load_rules(cur, "people")] == ["id_unique"]


@pytest.mark.parametrize("sample", [-1, 101, True, "5"])
def test_sample_size_is_checked(cur, sample):
    with pytest.raises(InvalidInput, match="sample"):
        validate(cur, "workers", [], sample=sample)

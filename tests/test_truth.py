"""Truth rules: TOML parsing, the one-expression check, and runs through a real lake's sandbox."""

from __future__ import annotations

import pytest

import lakehouse
from lakehouse.engine.truth import check_assertion, parse_rules, truth_check
from lakehouse.errors import Forbidden, InvalidInput


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One lake for the module: truth checks only read (and one test checks nothing was written)."""
    root = tmp_path_factory.mktemp("truth")
    (root / "pay.csv").write_text("id,payee,amount,state\n1,Ann,50,IL\n2,Bob,-5,WI\n3,Cy,,IL\n4,Di,-1,XX\n")
    (root / "sites.csv").write_text("site,open\nJoliet,true\nAurora,false\n")
    with lakehouse.open(root / "lake") as lk:
        lk.ingest(root / "pay.csv", "payments")
        lk.ingest(root / "sites.csv", "sites")
        yield lk


RULES = """
[[rule]]
name = "amount_positive"
dataset = "payments"
assert = "amount > 0"
message = "payments are positive"

[[rule]]
name = "known_state"
dataset = "payments"
assert = "state IN ('IL', 'WI')"
severity = "warn"

[[rule]]
name = "has_payee"
dataset = "payments"
assert = "payee IS NOT NULL AND length(payee) <= 10"

[[rule]]
name = "site_named"
dataset = "sites"
assert = "regexp_full_match(site, '[A-Z][a-z]+')"
"""


def test_truth_check_reports_violations_passes_and_samples(loaded):
    out = truth_check(RULES, loaded.query)
    assert out["passed"] == ["has_payee", "site_named"] and out["errors"] == [] and out["ok"] is False
    amount, state = out["violations"]
    assert (amount["rule"], amount["severity"], amount["count"], amount["message"]) == (
        "amount_positive", "error", 2, "payments are positive")
    assert [row["id"] for row in amount["sample"]] == [2, 4]  # ORDER BY ALL; the NULL amount is not a violation
    assert amount["sample"][0] == {"id": 2, "payee": "Bob", "amount": -5, "state": "WI"}
    assert (state["rule"], state["severity"], state["count"]) == ("known_state", "warn", 1)


def test_only_warnings_is_ok(loaded):
    toml = '[[rule]]\nname = "w"\ndataset = "payments"\nassert = "amount > 0"\nseverity = "warn"\n'
    out = truth_check(toml, loaded.query)
    assert out["ok"] is True and out["violations"][0]["count"] == 2


def test_runtime_failures_are_listed_and_the_rest_still_runs(loaded):
    toml = RULES + '\n[[rule]]\nname = "typo"\ndataset = "payments"\nassert = "amout > 0"\n' \
                   '\n[[rule]]\nname = "gone"\ndataset = "nowhere"\nassert = "x > 0"\n'
    out = truth_check(toml, loaded.query)
    assert [(e["rule"], e["code"]) for e in out["errors"]] == [("typo", "sql_binder"), ("gone", "sql_catalog")]
    assert out["passed"] == ["has_payee", "site_named"] and len(out["violations"]) == 2


def test_sample_size_and_dict_results(loaded):
    def query(sql):
        res = loaded.query(sql)
        return {"columns": res.columns, "rows": res.rows}

    out = truth_check(RULES, query, sample=1)
    assert len(out["violations"][0]["sample"]) == 1


def test_no_rules():
    assert truth_check("", lambda sql: pytest.fail("nothing to run")) == {
        "ok": True, "violations": [], "passed": [], "errors": []}


def test_the_sql_that_runs_is_regenerated_from_the_checked_tree():
    [rule] = parse_rules('[[rule]]\nname = "r"\ndataset = "payments"\nassert = "amount > 0 -- a note */ OR TRUE"\n')
    assert rule.assertion == "amount > 0"
    assert rule.count_sql() == 'SELECT count(*) FROM lake.main."payments" WHERE NOT (amount > 0)'
    assert rule.sample_sql(3).endswith("WHERE NOT (amount > 0) ORDER BY ALL LIMIT 3")


# -- refused assertions ------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", [
    "amount > 0; DROP TABLE payments",
    "amount > (SELECT max(amount) FROM payments)",
    "EXISTS (SELECT 1 FROM read_csv('/etc/passwd'))",
    "amount IN (SELECT 1)",
    "read_csv('/etc/passwd') IS NOT NULL",
    "length(read_text('/etc/passwd')) > 0",
    "getenv('HOME') IS NULL",
    "query('COPY payments TO ''/tmp/x.csv''') IS NULL",
    "sqlite_scan('x.db', 't') IS NULL",
    "chat('tier:rag', payee) = 'yes'",
    "embed(payee) IS NOT NULL",
    "SELECT 1",
    "COPY payments TO '/tmp/out.csv'",
    "ATTACH '/tmp/evil.db' AS evil",
    "INSERT INTO payments VALUES (9, 'x', 1, 'IL')",
    "amount > ?",
    "sum(amount) > 0",
    "row_number() OVER () > 1",
])
def test_refused_like_any_read_only_query(expr, loaded):
    toml = f'[[rule]]\nname = "r"\ndataset = "payments"\nassert = "{expr.replace(chr(34), chr(92) + chr(34))}"\n'
    with pytest.raises((Forbidden, InvalidInput)) as err:
        truth_check(toml, loaded.query)
    assert err.value.details["rule"] == "r"
    assert loaded.query("SELECT count(*) FROM payments").rows == [[4]]


def test_statement_and_file_refusals_are_forbidden():
    with pytest.raises(Forbidden, match="may not call read_csv"):
        check_assertion("read_csv('/etc/passwd') IS NULL", "r")
    with pytest.raises(Forbidden, match="one expression"):
        check_assertion("a > 0; DROP TABLE t", "r")
    with pytest.raises(Forbidden, match="boolean expression"):
        check_assertion("DROP TABLE t", "r")


def test_unparseable_assert_is_invalid_input():
    with pytest.raises(InvalidInput, match="truth rule r: assert is not a SQL expression"):
        check_assertion("1=1) UNION SELECT 1 --", "r")


# -- malformed files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "rule", "field"), [
    ('[[rule]]\ndataset = "payments"\nassert = "a > 0"\n', "#1", "name"),
    ('[[rule]]\nname = "r"\nassert = "a > 0"\n', "r", "dataset"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\n', "r", "assert"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\nassert = "a > 0"\nowner = "me"\n', "r", "owner"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\nassert = "a > 0"\nseverity = "fatal"\n', "r", "severity"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\nassert = "a > 0"\nmessage = 3\n', "r", "message"),
    ('[[rule]]\nname = "r"\ndataset = "../etc"\nassert = "a > 0"\n', "r", "dataset"),
    ('[[rule]]\nname = "r"\ndataset = "lh_secret"\nassert = "a > 0"\n', "r", "dataset"),
    ('[[rule]]\nname = "Bad Name"\ndataset = "payments"\nassert = "a > 0"\n', "Bad Name", "name"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\nassert = ""\n', "r", "assert"),
    ('[[rule]]\nname = "r"\ndataset = "payments"\nassert = "a > 0"\n[[rule]]\nname = "r"\ndataset = "payments"\n'
     'assert = "a < 9"\n', "r", "name"),
])
def test_malformed_rules_name_the_rule_and_field(toml, rule, field):
    with pytest.raises(InvalidInput) as err:
        parse_rules(toml)
    assert (err.value.details["rule"], err.value.details["field"]) == (rule, field)
    assert f"truth rule {rule}: {field}" in err.value.message


@pytest.mark.parametrize(("toml", "message"), [
    ("[[rule]\nname = 1", "not valid TOML"),
    ('title = "x"\n', "unknown top-level key 'title'"),
    ('rule = "x"\n', "array of tables"),
])
def test_malformed_files(toml, message):
    with pytest.raises(InvalidInput, match=message):
        parse_rules(toml)

-- SELECT * FROM truth_check(<TOML text of [[rule]] tables: name, dataset, assert, severity?, message?>): one row
-- per rule, status 'violated' (with a count and a JSON sample of failing rows), 'error' or 'passed'.
CREATE OR REPLACE MACRO truth_check(rules_toml, sample := 5) AS TABLE
    SELECT t.rule, t.status, t.dataset, t.severity, t.count, t.message, t.sample::JSON AS sample  -- t.: not the parameter
    FROM (SELECT unnest(system.main.lh_truth_check(system.main.getvariable('lh_profile'), rules_toml, sample), recursive := true)) AS t;

-- SELECT * FROM scorer_drift(): one row per (persisted category, today's category) of stored evidence.
CREATE OR REPLACE MACRO scorer_drift(kind := NULL) AS TABLE
    SELECT unnest(system.main.lh_scorer_drift(system.main.getvariable('lh_profile'), kind::VARCHAR), recursive := true);

-- SELECT * FROM playbook_drift(corpus := 'workers', k := 10): each recorded success, oldest first; `found`
-- says whether today's retrieval still has its answer in the top k.
CREATE OR REPLACE MACRO playbook_drift(corpus := NULL, k := 10) AS TABLE
    SELECT unnest(system.main.lh_playbook_drift(system.main.getvariable('lh_profile'), corpus::VARCHAR, k), recursive := true);

-- SELECT * FROM embedding_drift('workers', {'generation': 1}, {'generation': 2}): one row per test, `overall`
-- the verdict. A side is {'generation': N}, {'ids_sql': 'SELECT id ...'} or {'since': t, 'until': t}
-- (a struct, or the same as JSON text).
CREATE OR REPLACE MACRO embedding_drift(corpus, a, b, tests := NULL, seed := 0) AS TABLE
    SELECT unnest(system.main.lh_embedding_drift(system.main.getvariable('lh_profile'), corpus, system.main.to_json(a)::VARCHAR,
                                                 system.main.to_json(b)::VARCHAR, tests::VARCHAR[], seed),
                  recursive := true);

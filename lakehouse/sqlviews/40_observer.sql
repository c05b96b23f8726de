-- What happened, as SQL over the lake's own records (views: reading them is not itself recorded).
-- SELECT op, count(*), quantile_cont(duration_ms, 0.95) FROM observer_ops() GROUP BY op;
CREATE OR REPLACE MACRO observer_ops() AS TABLE
    SELECT * FROM system.main.read_json(${observer_glob}, format = 'newline_delimited', columns = ${observer_columns});

-- Failures that touched storage: failed ingests, damaged sidecars (rebuilt), write errors; and drift alerts.
CREATE OR REPLACE MACRO storage_errors() AS TABLE
    SELECT * FROM system.main.read_json(${journal_glob}, format = 'newline_delimited', columns = ${journal_columns});

-- One row per index build, swap or rollback, with build seconds and recall@10 measured at build time.
CREATE OR REPLACE MACRO hnsw_trials() AS TABLE
    SELECT recorded_at, corpus, generation, event, rows, params::JSON AS params, build_s, recall_at_10, sample
    FROM lake.lh.hnsw_trials ORDER BY recorded_at, corpus, generation;

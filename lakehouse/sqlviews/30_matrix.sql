-- SELECT * FROM matrix_search('forklift operator', corpora := ['workers', 'candidates'], metadata_filter := {'state': 'IL'})
-- Rows: (rank, corpus, id, score, text, metadata JSON, source 'index' | 'playbook', relevance, evidence JSON):
-- the same options as Python and HTTP (force_mode, threshold, where over a single dataset corpus included).
CREATE OR REPLACE MACRO matrix_search(query, corpora := NULL, k_per_corpus := 6, top := 8, metadata_filter := NULL,
                                      use_playbook := false, model := NULL, mode := NULL, relevance := NULL,
                                      force_mode := NULL, threshold := NULL, "where" := NULL) AS TABLE
    SELECT rank, corpus, id, score, text, metadata::JSON AS metadata, source, relevance, evidence::JSON AS evidence
    FROM (SELECT unnest(system.main.lh_matrix_search(system.main.getvariable('lh_profile'), query, corpora::VARCHAR[], k_per_corpus, top,
                                                     system.main.to_json(metadata_filter)::VARCHAR, use_playbook,
                                                     model, mode, relevance, force_mode, threshold::DOUBLE,
                                                     "where"), recursive := true));

-- SELECT * FROM playbook_lookup('forklift operator in Joliet', 5): recorded outcomes for similar queries.
CREATE OR REPLACE MACRO playbook_lookup(query, k) AS TABLE
    SELECT unnest(system.main.lh_playbook_lookup(system.main.getvariable('lh_profile'), query, k), recursive := true);

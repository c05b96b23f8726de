-- SELECT * FROM matrix_search('forklift operator', corpora := ['workers', 'candidates'], metadata_filter := {'state': 'IL'})
-- Rows: (rank, corpus, id, score, text, metadata JSON, source 'index' | 'playbook').
CREATE OR REPLACE MACRO matrix_search(query, corpora := NULL, k_per_corpus := 6, top := 8, metadata_filter := NULL,
                                      use_playbook := false, model := NULL, mode := NULL, relevance := NULL) AS TABLE
    SELECT rank, corpus, id, score, text, metadata::JSON AS metadata, source
    FROM (SELECT unnest(system.main.lh_matrix_search(query, corpora::VARCHAR[], k_per_corpus, top,
                                                     system.main.to_json(metadata_filter)::VARCHAR, use_playbook,
                                                     model, mode, relevance), recursive := true));

-- SELECT * FROM playbook_lookup('forklift operator in Joliet', 5): recorded outcomes for similar queries.
CREATE OR REPLACE MACRO playbook_lookup(query, k) AS TABLE
    SELECT unnest(system.main.lh_playbook_lookup(query, k), recursive := true);

-- Macro bodies call functions as system.main.<name> and unnest structs with `recursive := true`:
-- an unqualified function name is looked up through the lake's schema too, which starts a DuckLake
-- transaction (milliseconds of catalog reads) that a vector search does not need.

-- embed(text) -> FLOAT[384] (the default embedder's width); embed(text, 'hash:256') -> FLOAT[] of that one.
CREATE OR REPLACE MACRO embed(text) AS system.main.lh_embed(system.main.getvariable('lh_profile'), text, NULL)::${embed_type},
                        (text, embedder) AS system.main.lh_embed(system.main.getvariable('lh_profile'), text, embedder);

-- SELECT * FROM vector_search('workers', 'forklift operator', 10, ids := (SELECT list(id) FROM workers WHERE state = 'IL'))
-- `query` is text (embedded with the corpus's embedder) or a FLOAT[] vector; ids are returned as VARCHAR
-- (they join with integer ids too: DuckDB casts in the comparison). Columns: id, score, rank.
-- The query's VARCHAR form is computed once in a subquery (written inline, a FLOAT[] argument cost ~2 ms
-- more per call); the ids list travels as its JSON text (see udfs/vectors.py: parse_ids).
CREATE OR REPLACE MACRO vector_search(corpus, query, k, ids := NULL) AS TABLE
    SELECT unnest(system.main.lh_vector_search(system.main.getvariable('lh_profile'), corpus, q, k, system.main.to_json(ids)::VARCHAR), recursive := true)
    FROM (SELECT query::VARCHAR AS q);

-- SELECT * FROM text_search('workers', 'forklift OSHA-10', 10): BM25 over the corpus text.
CREATE OR REPLACE MACRO text_search(corpus, query, k, ids := NULL) AS TABLE
    SELECT unnest(system.main.lh_text_search(system.main.getvariable('lh_profile'), corpus, query, k, system.main.to_json(ids)::VARCHAR), recursive := true);

-- SELECT * FROM hybrid_search('workers', 'forklift operator', 10, fusion := 'linear'): vector + BM25 fused.
CREATE OR REPLACE MACRO hybrid_search(corpus, query, k, ids := NULL, fusion := 'rrf') AS TABLE
    SELECT unnest(system.main.lh_hybrid_search(system.main.getvariable('lh_profile'), corpus, query, k, system.main.to_json(ids)::VARCHAR, fusion),
                  recursive := true);

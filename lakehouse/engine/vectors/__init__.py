"""Vector search inside DuckDB: corpora in the lake, HNSW sidecars (usearch), exact and filtered search.

The package imports nothing itself (its modules import each other; `engine.VectorEngine` is the entry)."""

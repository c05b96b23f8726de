"""Vector search inside DuckDB: corpora in the lake, HNSW sidecars (usearch), exact and filtered search."""

from lakehouse.engine.vectors.engine import Hit, VectorEngine

__all__ = ["Hit", "VectorEngine"]

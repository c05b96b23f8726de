"""The matrix layer: several corpora searched as one, filtered for relevance, gated by model
strength, pre-filtered by metadata, and boosted by recorded outcomes (playbooks)."""

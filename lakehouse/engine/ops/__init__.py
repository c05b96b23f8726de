"""The catalog of operations: every capability of Lakehouse once, typed, validated, recorded.

    lake.ops.call("vectors.search", corpus="workers", query="forklift operator", k=5)
    CATALOG.describe()   # name, description, JSON schema of the input, surfaces: for MCP, workflows, the README

Surfaces (Python methods of `Lake`, SQL functions, HTTP routes, the CLI, MCP tools, UI views, workflow
nodes) are adapters over these operations; the rules (read-only entrances, import directories, limits)
live in the operations, and each call lands exactly one ObservedOp with its origin.
"""

from lakehouse.engine.ops import (
    audit_ops,
    data_ops,
    distill_ops,
    drift_ops,
    journal_ops,
    knowledge_ops,
    observer_ops,
    pathway_ops,
    profile_ops,
    quality_ops,
    retrieval_ops,
    storage_ops,
    ui_ops,
    vector_ops,
    workflow_ops,
)
from lakehouse.engine.ops.base import Catalog, Input, Op, Operations
from lakehouse.engine.ops.context import CallContext, current, entrance

CATALOG = Catalog([*data_ops.OPS, *vector_ops.OPS, *retrieval_ops.OPS, *observer_ops.OPS, *journal_ops.OPS,
                   *storage_ops.OPS, *ui_ops.OPS, *drift_ops.OPS, *distill_ops.OPS, *pathway_ops.OPS,
                   *quality_ops.OPS, *workflow_ops.OPS, *audit_ops.OPS, *knowledge_ops.OPS, *profile_ops.OPS])

__all__ = ["CATALOG", "CallContext", "Catalog", "Input", "Op", "Operations", "current", "entrance"]

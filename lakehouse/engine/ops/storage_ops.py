"""Operations on the lake's buckets: storage.drain (rescued rows back to the primary bucket)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.engine import buckets
from lakehouse.engine.ops.base import Input, Op

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


class NoInput(Input):
    pass


def _drain(lake: Lake, inp: NoInput) -> dict[str, Any]:
    return buckets.drain(lake.ctx, lake.location.buckets)


OPS = [
    Op("storage.drain", "Move the rows an ingest wrote to the rescue bucket (the primary failed) back to the primary, "
       "one transaction per file: none lost, none doubled.", NoInput,
       _drain, output=dict[str, Any], writes=True,
       http="POST /storage/drain", cli="lakehouse storage drain", count=lambda d: d["rows"],
       summary=lambda d: {k: d[k] for k in ("files", "rows", "remaining")}),
]

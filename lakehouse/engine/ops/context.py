"""Who is calling: one context variable, set once at each entrance (a surface), never passed by hand.

    with entrance("http"):            # the HTTP adapter, around one request
        lake.ops.call("vectors.search", {...})

Origins: python (the default: `import lakehouse`), sql (UDFs), http, cli, mcp, ui, workflow. A workflow
node also names its workflow, run and node, and the origin that started the workflow (`initiator`): a node
has the powers of whoever started its workflow, never more. A request bound to a profile names the profile.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.engine.profiles import Profile

ORIGINS = ("python", "sql", "http", "cli", "mcp", "ui", "workflow")
LOCAL_ORIGINS = frozenset({"python", "cli"})  # the server owner's own program or terminal


@dataclasses.dataclass(frozen=True)
class CallContext:
    origin: str = "python"
    profile: str | None = None
    scope: Profile | None = None  # the profile's bindings (resolved by Operations.call when only the name is set)
    workflow: str | None = None
    run_id: str | None = None
    node: str | None = None
    initiator: str | None = None  # for origin workflow: the origin that started the run (None: unknown, remote)
    read_only: bool = False  # the entrance may only read (UDFs of the sandboxed SQL instance)
    op: str | None = None  # the operation running (set by Operations.call): what the change journal records


_CURRENT: contextvars.ContextVar[CallContext] = contextvars.ContextVar("lakehouse_call", default=CallContext())  # noqa: B039 - frozen


def current() -> CallContext:
    return _CURRENT.get()


def remote() -> bool:
    """The caller is not on the local machine. A Python program or the CLI may read any file it can; callers from
    elsewhere (HTTP, MCP, the web UI, SQL) only inside import_dirs, and never run a `local_only` op. A workflow
    node is as local as whoever started its workflow (`initiator`); a node whose initiator is unknown is remote."""
    caller = current()
    origin = caller.initiator if caller.origin == "workflow" else caller.origin
    return origin not in LOCAL_ORIGINS


@contextlib.contextmanager
def entrance(origin: str | None = None, **fields: object) -> Iterator[CallContext]:
    """Set the caller for the block: `origin` and any CallContext field; the rest is inherited, so a SQL
    function called from a workflow's query keeps the workflow's profile and node."""
    ctx = _CURRENT.get()
    if origin is not None:
        if origin not in ORIGINS:
            raise ValueError(f"unknown origin {origin!r}")
        fields["origin"] = origin
    new = dataclasses.replace(ctx, **fields) if fields else ctx  # type: ignore[arg-type]
    token = _CURRENT.set(new)
    try:
        yield new
    finally:
        _CURRENT.reset(token)

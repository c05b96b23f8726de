"""Lakehouse as an MCP server: every operation of the catalog is a tool, datasets and corpora are resources.

    lakehouse mcp --root ./lake        # stdio, for an MCP client that starts the server itself
    lakehouse serve --root ./lake      # streamable HTTP at http://127.0.0.1:3100/mcp, beside the HTTP API

Modules: `tools` (tool names and schemas from the catalog; no SDK needed), `server` (the SDK server: each tool
call and resource read is `lake.ops.call` under `entrance("mcp")`), `stdio` (the `lakehouse mcp` command),
`http` (the `/mcp` route of the HTTP app). The SDK is the optional extra `lakehouse[mcp]`.
"""

from __future__ import annotations

from lakehouse.errors import ExtensionMissing

INSTALL = "pip install 'lakehouse[mcp]'"


def require_sdk() -> None:
    """ExtensionMissing naming the extra to install, when the MCP SDK is not there."""
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError as exc:
        raise ExtensionMissing(f"the MCP server needs the MCP Python SDK: {INSTALL}") from exc

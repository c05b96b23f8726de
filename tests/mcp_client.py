"""MCP test helpers: the SDK's own client, driven from synchronous tests.

    out = session(http_target(live_url), lambda c: c.call_tool("sql_query", {"sql": "SELECT 1"}))
    out = session(stdio_target(lake_root), lambda c: c.list_tools())

`http_target(url, headers=...)` talks streamable HTTP to `<url>/mcp` (the app's mount); `stdio_target(root)`
starts `python -m lakehouse mcp --root <root>` from this checkout as a subprocess. Each `session` is one client
connection, closed (and, for stdio, the server process ended) before it returns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).parents[1]
T = TypeVar("T")
Target = Callable[[], Any]  # a fresh transport (or client target) for each session


def http_target(base_url: str, headers: dict[str, str] | None = None) -> Target:
    if headers is None:
        return lambda: base_url + "/mcp"

    @asynccontextmanager
    async def transport():  # type: ignore[no-untyped-def]
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                streamable_http_client(base_url + "/mcp", http_client=http) as streams:
            yield streams

    return transport


def stdio_target(root: Path, **env: str) -> Target:
    """`lakehouse mcp` as an MCP client configuration would start it, importing this checkout's package."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    params = StdioServerParameters(command=sys.executable, args=["-m", "lakehouse", "mcp", "--root", str(root)],
                                   env={"PYTHONPATH": path, **env}, cwd=str(ROOT))
    return lambda: params


def session(target: Target, fn: Callable[[Client], Awaitable[T]], **client: Any) -> T:
    """Connect, `await fn(client)`, disconnect; the result of `fn`."""

    async def main() -> T:
        async with Client(target(), **client) as c:
            return await fn(c)

    try:
        return anyio.run(main)
    except BaseExceptionGroup as group:  # the client's task groups wrap what the server answered
        raise _single(group) from None


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def call(target: Target, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """One tool call in a session of its own: the CallToolResult."""
    return session(target, lambda c: c.call_tool(tool, arguments or {}))

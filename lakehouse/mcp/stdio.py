"""`lakehouse mcp --root ./lake`: the MCP server over stdin/stdout, for a client that starts it as a subprocess.

While it serves, the SDK points file descriptor 1 at stderr, so stray output (a progress bar, a library's print)
cannot corrupt the protocol; logging goes to stderr too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from lakehouse.engine.ops import entrance
from lakehouse.errors import Unauthorized
from lakehouse.mcp import require_sdk

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

WORKERS = 4  # operations that may run at once: a client can send calls without waiting for the previous answer


def serve_stdio(lake: Lake) -> None:
    """Serve `lake` until the client closes stdin; the caller closes the lake afterwards."""
    require_sdk()
    import anyio
    from mcp.server.stdio import stdio_server

    from lakehouse.mcp.server import build_server, in_pool

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="lakehouse-mcp") as pool:
        server = build_server(lake, in_pool(pool))

        async def main() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        with entrance("mcp", **mcp_caller(lake)):
            anyio.run(main)


def mcp_caller(lake: Lake) -> dict[str, object]:
    """The CallContext fields of every tool call: the profile whose key is `mcp_key` (LH_MCP_KEY), or none."""
    key = lake.settings.mcp_key
    if not key:
        return {}
    profile = lake.profiles.resolve(key)
    if profile is None:
        raise Unauthorized("mcp_key (LH_MCP_KEY) is not the key of any profile of this lake")
    return {"profile": profile.name, "scope": profile}

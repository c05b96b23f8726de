"""`POST /mcp`: the MCP server over streamable HTTP, on the port and behind the guards of the HTTP API.

The SDK's streamable HTTP transport is an ASGI application; `lakehouse serve` is a Flask (WSGI) app on waitress.
Instead of a second server, or a bridge with an event loop thread of its own, `/mcp` is a Flask route: it passes
`guard_request` like every route (Host, Origin, `api_key`), reads the body under `max_json_mb`, and hands the
request to the SDK's session manager, in stateless JSON-response mode, on an event loop that lives for this one
request in this waitress thread. Each exchange is one POST answered by one JSON body, so no waitress thread is
held by a long-lived stream, and no loop or thread outlives the request. Hence:
- GET (a stream of server-initiated messages) and DELETE (the end of a session) answer 405, as the protocol allows
  a server that sends no notifications and keeps no sessions;
- both the 2026-07-28 protocol (`server/discover`, no handshake) and the earlier one (`initialize`) work.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from lakehouse.engine.ops import entrance
from lakehouse.http.app import get_lake, json_data, request_caller
from lakehouse.mcp import require_sdk

bp = Blueprint("mcp", __name__)

SERVER = "lakehouse.mcp"  # app.extensions key of the app's MCP server (built on the first request)


@bp.post("/mcp")
def mcp() -> Response:
    """One MCP message (JSON-RPC) in, its answer out (JSON, or 202 for a notification)."""
    require_sdk()
    import anyio

    from lakehouse.mcp.server import build_server, inline

    server = current_app.extensions.get(SERVER)
    if server is None:
        server = current_app.extensions[SERVER] = build_server(get_lake(), inline)
    if request.mimetype != "application/json":  # the API's rule: a cross-site form or text/plain POST is never read
        raise UnsupportedMediaType("send MCP messages as application/json")
    body = json_data()
    # the profile of the key the client sent; the event loop's tasks, and so the tool calls, start from this context
    with entrance("mcp", **request_caller()):
        status, headers, chunks = anyio.run(_exchange, server, _scope(), body)
    return Response(b"".join(chunks), status=status, headers=headers)


async def _exchange(server: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """The SDK's answer to one request, collected from its ASGI messages."""
    import anyio
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    manager = StreamableHTTPSessionManager(
        server, json_response=True, stateless=True,
        max_request_body_size=max(len(body), 1),  # max_json_mb bounded it already
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False))  # guard_request did
    delivered = False
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # the whole body was read: the client stays until the answer is sent
            await anyio.sleep_forever()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())
               if k.lower() != b"content-length"]  # werkzeug sets it from the body
    return start["status"], headers, chunks


def _scope() -> dict[str, Any]:
    """The ASGI scope of the current request."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.scheme, "path": request.path, "raw_path": request.path.encode(), "root_path": "",
            "query_string": request.query_string,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]}

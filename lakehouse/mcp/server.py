"""The MCP server of one lake: a tool per operation of the catalog, a resource per dataset and corpus.

    server = build_server(lake, inline)   # the SDK's low-level Server, for a transport to run

Built on the SDK's low-level `Server`, not `MCPServer`: MCPServer makes tools of Python functions (their
signatures become the schemas, and it validates arguments itself), while these tools are the catalog's operations,
whose JSON schemas exist already and whose validation (InvalidInput naming the field) is the operation's own.

Every tool call and resource read is `lake.ops.call` under `entrance("mcp")`: validated, checked (a remote
origin: paths only inside import_dirs, the server's row and time limits) and recorded like a call from any other
surface. An operation's error is a tool result with `isError` holding the HTTP API's error shape
`{"error": {"code", "message"}}`, so the model can read it and try again; an unknown tool or resource is a
protocol error. Operations block (DuckDB, LLM calls): `run` says where they run (see `inline`, `in_pool`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

import lakehouse
from lakehouse.engine.ops import entrance
from lakehouse.errors import LakehouseError, PayloadTooLarge
from lakehouse.http.json import to_jsonable
from lakehouse.mcp.tools import tool_specs

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

log = logging.getLogger(__name__)

T = TypeVar("T")
Run = Callable[[Callable[[], T]], Awaitable[T]]

INSTRUCTIONS = (
    "Lakehouse: datasets in a DuckDB lake, vector corpora over them and retrieval with citations. Each tool is one "
    "operation of the lake (the same as its HTTP API). Start with list_datasets and corpus_list; sql_query runs "
    "one read-only SQL statement; vector_search, hybrid_search and matrix_search retrieve rows; ask answers a "
    "question from retrieved rows; record_playbook records which answers worked. Resources "
    "lakehouse://datasets/<name> and lakehouse://corpora/<name> describe each dataset and corpus. A failed call "
    'returns {"error": {"code", "message"}}.')

_RESOURCE = re.compile(r"^lakehouse://(datasets|corpora)/([^/?#]+)$")
_DESCRIBE = {"datasets": "dataset.describe", "corpora": "corpus.describe"}
_JSON = "application/json"
TEMPLATES = [
    types.ResourceTemplate(uri_template="lakehouse://datasets/{name}", name="dataset", mime_type=_JSON,
                           description="A dataset's columns, row count and ingest history."),
    types.ResourceTemplate(uri_template="lakehouse://corpora/{name}", name="corpus", mime_type=_JSON,
                           description="A corpus: embedder, metric, rows, source and index generations."),
]


async def inline(fn: Callable[[], T]) -> T:
    """Run the operation on the event loop's own thread: for a loop that serves one HTTP request and nothing else."""
    return fn()


def in_pool(pool: Executor) -> Run[Any]:
    """Run operations on `pool`'s threads (the caller, with its context variables, goes along), so a long one
    leaves the loop free for other requests (stdio). A fixed pool, because the lake keeps a cursor per thread."""

    async def run(fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(pool.submit(contextvars.copy_context().run, fn))

    return run


def build_server(lake: Lake, run: Run[Any]) -> Server[Any]:
    """The server: the tools are the lake's catalog as it is now (an op added later is a tool of the next server)."""
    specs = {s.name: s for s in tool_specs(lake.ops.catalog)}
    tools = [types.Tool(name=s.name, description=s.description, input_schema=s.input_schema,
                        annotations=types.ToolAnnotations(read_only_hint=not s.writes)) for s in specs.values()]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"no tool named {params.name!r}")
        arguments = dict(params.arguments or {})
        return await run(lambda: run_tool(lake, spec.op, arguments))

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await run(lambda: resources(lake)))

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=TEMPLATES)

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        return await run(lambda: read(lake, uri))

    def input_schema(name: str) -> dict[str, Any] | None:
        spec = specs.get(name)
        return None if spec is None else spec.input_schema

    return Server("lakehouse", version=lakehouse.__version__, title="Lakehouse", instructions=INSTRUCTIONS,
                  get_tool_input_schema=input_schema, on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_list_resource_templates=list_templates,
                  on_read_resource=read_resource)


def run_tool(lake: Lake, op: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """Call `op` with the tool's arguments; its output (as JSON text, and as structured content for programs), or
    its error, as a tool result."""
    try:
        with entrance("mcp"):
            value = as_json(whole(lake.ops.call(op, arguments)))
        structured = value if isinstance(value, dict) else {"result": value}  # structured content is an object
        result = types.CallToolResult(content=[types.TextContent(type="text", text=dumps(value))],
                                      structured_content=structured)
        _check_size(lake, result)
    except LakehouseError as exc:
        if exc.status >= 500:  # a server-side failure: keep its traceback in the log
            log.error("MCP tool for %s failed: %s", op, exc, exc_info=exc)
        return _error(exc)
    except Exception:  # the message may hold paths, SQL or secrets: the log has it, the client a fixed text
        log.exception("MCP tool for %s failed", op)
        return _error(LakehouseError("internal error"))
    return result


_ENVELOPE = 4096  # room for the JSON-RPC envelope around a result


def _check_size(lake: Lake, result: types.CallToolResult) -> None:
    """`max_response_mb` on every transport, and as a tool error: over HTTP, the app's own check would otherwise
    answer a larger message with an HTTP 413 the client cannot show to its model."""
    limit = lake.settings.max_response_mb * 2**20
    size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    if size + _ENVELOPE > limit:
        raise PayloadTooLarge(f"the result is {size / 2**20:.1f} MiB, over the {limit / 2**20:g} MiB limit "
                              "(max_response_mb); ask for fewer rows (max_rows, k) or columns", code="response_too_large")


def resources(lake: Lake) -> list[types.Resource]:
    """A resource per dataset and per corpus, listed by their operations."""
    try:
        with entrance("mcp"):
            datasets = lake.ops.call("dataset.list")
            corpora = lake.ops.call("corpus.list")
    except LakehouseError as exc:
        raise _protocol_error(exc) from None
    return ([types.Resource(uri=f"lakehouse://datasets/{d['name']}", name=d["name"], mime_type=_JSON,
                            description=f"dataset ({d['kind']}), {d['rows']} rows") for d in datasets]
            + [types.Resource(uri=f"lakehouse://corpora/{c['name']}", name=c["name"], mime_type=_JSON,
                              description=f"corpus ({c['kind']}), {c['rows']} rows, embedder {c['embedder']}")
               for c in corpora])


def read(lake: Lake, uri: str) -> types.ReadResourceResult:
    """`lakehouse://datasets/<name>` (dataset.describe) or `lakehouse://corpora/<name>` (corpus.describe)."""
    match = _RESOURCE.match(uri)
    if match is None:
        raise MCPError(types.INVALID_PARAMS, f"no resource {uri!r}: use lakehouse://datasets/<name> or "
                                             "lakehouse://corpora/<name>")
    try:
        with entrance("mcp"):
            out = lake.ops.call(_DESCRIBE[match[1]], name=unquote(match[2]))
    except LakehouseError as exc:
        raise _protocol_error(exc) from None
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=_JSON,
                                                                         text=dumps(as_json(out)))])


def whole(out: Any) -> Any:
    """A tool's result is whole: a stream (`chat` with `stream: true`, the one streaming operation) is read to its end."""
    if isinstance(out, Iterator):
        content = "".join(out)
        return {"model": out.model, "provider": out.provider, "content": content, "usage": out.usage}
    return out


def as_json(out: Any) -> Any:
    """An operation's output as JSON values, in the form the HTTP API sends (results with `to_dict()` first)."""
    if hasattr(out, "to_dict"):
        out = out.to_dict()
    elif isinstance(out, list):
        out = [v.to_dict() if hasattr(v, "to_dict") else v for v in out]
    return to_jsonable(out)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _error(exc: LakehouseError) -> types.CallToolResult:
    body = {"error": to_jsonable(exc.to_dict())}
    return types.CallToolResult(content=[types.TextContent(type="text", text=dumps(body))], structured_content=body,
                                is_error=True)


def _protocol_error(exc: LakehouseError) -> MCPError:
    """Resource reads have no error result: the operation's error becomes the protocol's, its code in `data`."""
    if exc.status >= 500:
        log.error("MCP resource read failed: %s", exc, exc_info=exc)
    code = types.INVALID_PARAMS if exc.status < 500 else types.INTERNAL_ERROR
    return MCPError(code, exc.message, data=to_jsonable(exc.to_dict()))

"""`create_app(lake)`: the Flask application factory, and the helpers blueprints share.

The lake lives in `app.extensions["lakehouse"]`; views reach it with `get_lake()` (through
`current_app`) and forward to the operations catalog with `call(op, args)`, which marks the caller
as `http`. Every request first passes `guard_request`: the Host must be the server's own (DNS
rebinding), a browser's cross-site request is refused (any web page could otherwise drive the API),
and the caller is identified: `api_key` is the unscoped (owner's) key, a profile's key binds the request to
that profile (`auth`: off, optional or required; required by default beyond loopback). An unknown key is a 401.
"""

from __future__ import annotations

import hmac
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, request

from lakehouse.engine.ops import entrance
from lakehouse.errors import Forbidden, InvalidInput, PayloadTooLarge, Unauthorized
from lakehouse.http.errors import LakehouseRequest, register_error_handlers
from lakehouse.http.json import LakehouseJSONProvider

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

EXTENSION = "lakehouse"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

# Route families, registered in this order. Adding one is one line: a module of this package
# that defines `bp = Blueprint(...)`. Named, not imported here, because route modules import
# the helpers below (importing them at the top would be circular).
BLUEPRINTS: tuple[str, ...] = (
    "lakehouse.http.routes_core",
    "lakehouse.http.routes_vectors",
    "lakehouse.http.routes_chat",
    "lakehouse.http.routes_openai",
    "lakehouse.http.routes_matrix",
    "lakehouse.http.routes_observer",
    "lakehouse.http.routes_history",
    "lakehouse.http.routes_workflow",
    "lakehouse.mcp.http",  # POST /mcp: the MCP server over streamable HTTP (needs lakehouse[mcp])
    "lakehouse.http.ui",
    "lakehouse.http.routes_drift",
    "lakehouse.http.routes_distill",
    "lakehouse.http.routes_pathways",
    "lakehouse.http.routes_quality",
)


class LakehouseFlask(Flask):
    json_provider_class = LakehouseJSONProvider
    request_class = LakehouseRequest

    def make_response(self, rv: Any) -> Response:
        """Views return what the operation returned: results with `to_dict()` (and lists of them) become JSON."""
        if isinstance(rv, tuple):
            return super().make_response((_plain(rv[0]), *rv[1:]))
        return super().make_response(_plain(rv))


def create_app(lake: Lake, *, bind_host: str | None = None) -> Flask:
    """A Flask app serving `lake`; the caller keeps ownership of the lake (and closes it). `bind_host`: the
    address the server listens on (its requests' Host may name it)."""
    app = LakehouseFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = lake.settings.max_upload_mb * 2**20
    app.config["LAKEHOUSE_HOSTS"] = frozenset({*LOOPBACK, *(h.lower() for h in lake.settings.allowed_hosts),
                                               *([bind_host.lower()] if bind_host else [])})
    app.config["LAKEHOUSE_AUTH"] = auth_mode(lake, bind_host)
    app.extensions[EXTENSION] = lake
    register_error_handlers(app)
    app.before_request(guard_request)
    app.after_request(limit_response)
    for module in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module).bp)
    return app


def get_lake() -> Lake:
    """The lake of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def call(op: str, args: Mapping[str, Any] | None = None, /, *, text_args: bool = False, **kwargs: Any) -> Any:
    """Run operation `op` for this request: the HTTP entrance of the catalog."""
    with entrance("http", **request_caller()):
        return get_lake().ops.call(op, args, text_args=text_args, **kwargs)


def request_caller() -> dict[str, Any]:
    """CallContext fields of this request's caller (its profile), as `guard_request` identified it."""
    return g.get("lakehouse_caller") or {}


def auth_mode(lake: Lake, bind_host: str | None) -> str:
    """The `auth` setting, or its default: required when the server listens beyond loopback."""
    if lake.settings.auth:
        return lake.settings.auth
    return "required" if bind_host and bind_host.strip("[]").lower() not in LOOPBACK else "optional"


def query_args() -> dict[str, Any]:
    """A GET request's query string (values are text: `call(..., text_args=True)` converts them)."""
    return request.args.to_dict()


def json_body(*, optional: bool = False, array: bool = False) -> Any:
    """The request body as a JSON object (`array`: or an array). Only `application/json` is read (415 otherwise):
    a browser sends a cross-site `text/plain` or form POST without asking first, so any other type could come
    from any page."""
    if not json_data() and optional:
        return {}
    body = request.get_json()
    if not isinstance(body, dict) and not (array and isinstance(body, list)):
        wanted = "a JSON object or array" if array else "a JSON object"
        raise InvalidInput(f"request body must be {wanted}, got {_json_type(body)}", code="invalid_json")
    return body


def json_data() -> bytes:
    """The bytes of a JSON request body: at most `max_json_mb` (PayloadTooLarge), on every route that reads JSON."""
    limit = get_lake().settings.max_json_mb * 2**20
    length = request.content_length
    if (length if length is not None else len(request.get_data(cache=True))) > limit:  # chunked: no length sent
        raise PayloadTooLarge(f"a JSON body is at most {limit / 2**20:g} MiB (max_json_mb); files go to /ingest as "
                              "multipart uploads")
    return request.get_data(cache=True)


def guard_request() -> None:
    """Refuse what no legitimate client sends: a foreign Host, a cross-site browser request, a missing key."""
    host = _hostname(request.host)
    if host not in current_app.config["LAKEHOUSE_HOSTS"]:
        raise Forbidden(f"host {host!r} is not served here; add it to allowed_hosts to allow it", code="bad_host")
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/").lower() != request.host_url.rstrip("/").lower():
        raise Forbidden("cross-origin requests are not allowed", code="cross_origin")
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise Forbidden("cross-site requests are not allowed", code="cross_origin")
    g.lakehouse_caller = _authenticate()


def _authenticate() -> dict[str, Any]:
    """The caller's CallContext fields from its key (module docstring), or Unauthorized."""
    lake = get_lake()
    mode, key = current_app.config["LAKEHOUSE_AUTH"], lake.settings.api_key
    sent = _sent_key()
    is_admin = bool(key) and hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), key.encode())
    if mode == "off":
        if key and not is_admin:
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        return {}
    if is_admin:
        return {}
    if sent:
        profile = lake.profiles.resolve(sent)
        if profile is not None:
            return {"profile": profile.name, "scope": profile}
        # A server with no key of any kind takes any placeholder (OpenAI clients always send one); once it has
        # keys, an unknown one is refused, so a mistyped profile key never becomes the owner's access.
        if key or lake.profiles.list():
            raise Unauthorized("the key sent is not a key of this server")
    if key or mode == "required":
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    return {}


def _sent_key() -> str:
    """The key of `Authorization: Bearer <key>` (scheme in any case) or of `X-API-Key`. An Authorization header
    in any other form (`Token <key>`, `Basic ...`, a tab for the space) is a key sent wrongly, not no key: were it
    read as none, a profile's key sent so would become the owner's access on a loopback server."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return request.headers.get("X-API-Key", "")
    if header[:7].lower() != "bearer ":
        if header.strip().lower() == "bearer":  # an empty key: what a client with no key configured sends
            return request.headers.get("X-API-Key", "")
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    return header[7:]


def limit_response(response: Response) -> Response:
    """`max_response_mb`: a larger body (one huge row, a result of many) is a 413 instead of exhausting memory."""
    limit = get_lake().settings.max_response_mb * 2**20
    if not response.is_streamed and response.content_length is not None and response.content_length > limit:
        from lakehouse.http.errors import error_body, error_response

        return error_response(413, error_body(
            "response_too_large", f"the response is {response.content_length / 2**20:.1f} MiB, over the "
            f"{limit / 2**20:g} MiB limit (max_response_mb); ask for fewer rows (max_rows) or columns"))
    return response


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list) and value and hasattr(value[0], "to_dict"):
        return [v.to_dict() for v in value]
    return value


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:3100
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "an object"}
    if value is None:
        return "null"
    return next((n for kind, n in names.items() if isinstance(value, kind)), type(value).__name__)

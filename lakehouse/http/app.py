"""`create_app(lake)`: the Flask application factory, and the request helpers blueprints share.

The lake lives in `app.extensions["lakehouse"]`; views reach it with `get_lake()` (through
`current_app`), so one process can serve several apps and tests build one per lake.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, request

from lakehouse.errors import InvalidInput
from lakehouse.http.errors import LakehouseRequest, register_error_handlers
from lakehouse.http.json import LakehouseJSONProvider

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

EXTENSION = "lakehouse"

# Route families, registered in this order. Adding one is one line: a module of this package
# that defines `bp = Blueprint(...)`. Named, not imported here, because route modules import
# the helpers below (importing them at the top would be circular).
BLUEPRINTS: tuple[str, ...] = (
    "lakehouse.http.routes_core",
    "lakehouse.http.routes_vectors",
    "lakehouse.http.routes_chat",
    "lakehouse.http.routes_openai",
    "lakehouse.http.routes_matrix",
)


class LakehouseFlask(Flask):
    json_provider_class = LakehouseJSONProvider
    request_class = LakehouseRequest


def create_app(lake: Lake) -> Flask:
    """A Flask app serving `lake`; the caller keeps ownership of the lake (and closes it)."""
    app = LakehouseFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = lake.settings.max_upload_mb * 2**20
    app.extensions[EXTENSION] = lake
    register_error_handlers(app)
    for module in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module).bp)
    return app


def get_lake() -> Lake:
    """The lake of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, whatever the Content-Type (curl -d sends a form type)."""
    body = request.get_json(force=True)
    if not isinstance(body, dict):
        raise InvalidInput(f"request body must be a JSON object, got {_json_type(body)}", code="invalid_json")
    return body


def field(source: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *,
          required: bool = False, default: Any = None) -> Any:
    """`source[name]` checked against `kind` (`default` when absent); 400 naming the field otherwise."""
    value = source.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"missing field {name!r}", code="missing_field", field=name)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int to Python but not to a JSON client: true is no row count
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds)
        raise InvalidInput(f"field {name!r} must be {wanted}, got {_json_type(value)}",
                           code="invalid_field", field=name)
    return value


_JSON_TYPES: dict[type, str] = {
    str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
    dict: "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):  # bool before int
        if isinstance(value, kind):
            return _JSON_TYPES[kind]
    return type(value).__name__

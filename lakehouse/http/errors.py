"""The one place that turns exceptions into the JSON error shape.

    {"error": {"code": "not_found", "message": "no dataset named 'x'", ...details}}

with the exception's HTTP status: `LakehouseError.status`, werkzeug's code for routing and
protocol errors (404, 405, 413 ...), 400 `invalid_json` for unparsable bodies, and 500
`internal` for anything else (logged with its traceback, never shown to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Request, Response, current_app, request
from werkzeug import exceptions as wz

from lakehouse.errors import InvalidInput, LakehouseError, PayloadTooLarge

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The shape every error response has; `details` go inside `error`, never beside it."""
    return {"error": {**details, "code": code, "message": message}}


def error_response(status: int, body: dict[str, Any]) -> Response:
    response = current_app.json.response(body)
    response.status_code = status
    return response


class LakehouseRequest(Request):
    """Unparsable JSON bodies raise InvalidInput(code="invalid_json") instead of a bare 400."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:  # not a JSON content type and not forced: werkzeug's 415
            return super().on_json_loading_failed(e)
        raise InvalidInput(f"request body is not valid JSON: {e}", code="invalid_json") from e


def handle_lakehouse_error(exc: LakehouseError) -> Response:
    if exc.status >= 500:  # a server-side failure: keep its traceback in the log
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
    return error_response(exc.status, {"error": exc.to_dict()})


def handle_http_exception(exc: wz.HTTPException) -> Response | wz.HTTPException:
    if exc.code is None or exc.code < 400:  # redirects (e.g. a missing trailing slash) pass through
        return exc
    if isinstance(exc, wz.RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return handle_lakehouse_error(PayloadTooLarge(
            f"request body is larger than {limit / 2**20:g} MiB (max_upload_mb)"))
    if exc.code >= 500:
        # Flask wraps errors raised while building a response in InternalServerError
        return handle_unexpected(getattr(exc, "original_exception", None) or exc)
    code = _HTTP_CODES.get(exc.code) or (exc.name or "error").lower().replace(" ", "_")
    response = error_response(exc.code, error_body(code, _http_message(exc)))
    if isinstance(exc, wz.MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _http_message(exc: wz.HTTPException) -> str:
    if isinstance(exc, wz.NotFound):
        return f"no route for {request.method} {request.path}"
    if isinstance(exc, wz.MethodNotAllowed):
        allowed = ", ".join(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"method {request.method} is not allowed on {request.path}; use {allowed}"
    return exc.description or exc.name


def handle_unexpected(exc: BaseException) -> Response:
    # The message may hold paths, SQL or secrets: it goes to the log, the client gets a fixed text.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, error_body("internal", "internal error"))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(LakehouseError, handle_lakehouse_error)
    app.register_error_handler(wz.HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)

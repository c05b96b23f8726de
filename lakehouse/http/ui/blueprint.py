"""The web UI's blueprint and what its views share: operations called as origin `ui`, a whole page or (for HTMX)
only the fragment that changes, a CSRF check on every POST, security headers, and errors rendered as HTML.

Views are adapters: they read a form or a query string, call operations (`call`, `attempt`) and render what
comes back. Nothing here decides anything about the data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug import exceptions as wz

from lakehouse.engine.ops import entrance
from lakehouse.errors import LakehouseError, PayloadTooLarge
from lakehouse.http.app import get_lake, request_caller
from lakehouse.http.ui import csrf, render

log = logging.getLogger(__name__)

bp = Blueprint("ui", __name__)

# Everything the pages load is ours (no CDN, no inline script or style): a script injected into the data could
# not run even if escaping ever failed, and no other site may frame the pages (clickjacking the outcome buttons).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
ERROR_HEADER = "X-Lakehouse-Error"  # on a fragment that shows a failed operation (it answers 200, see `page`)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    csrf.install(state.app)
    render.install(state.app)
    state.app.jinja_env.globals["csrf_token"] = csrf.token


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        csrf.check()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # pages carry the form token and live data
    response.vary.add("HX-Request")
    response.vary.add("Cookie")
    return csrf.set_cookie(response)


def call(op: str, args: Mapping[str, Any] | None = None, /, *, text_args: bool = False, **kwargs: Any) -> Any:
    """Run operation `op` for this request: the UI's entrance to the catalog."""
    with entrance("ui", **request_caller()):
        return get_lake().ops.call(op, args, text_args=text_args, **kwargs)


def attempt(op: str, args: Mapping[str, Any] | None = None, /, *, text_args: bool = False,
            **kwargs: Any) -> tuple[Any, LakehouseError | None]:
    """(result, None), or (None, the error) to show where the result would have been."""
    try:
        return call(op, args, text_args=text_args, **kwargs), None
    except LakehouseError as exc:
        return None, exc


def is_fragment() -> bool:
    return request.headers.get("HX-Request") == "true"


def page(template: str, fragment: str | None = None, *, error: LakehouseError | None = None,
         **context: Any) -> tuple[str, int, dict[str, str]]:
    """`template` (a whole page), or for an HTMX request `fragment` (the part it replaces).

    A failed operation is shown where its result would be. A whole page carries the error's status; a fragment
    answers 200 with the error in `X-Lakehouse-Error`: the exchange worked, its content is the error (browsers log
    every 4xx/5xx fetch as a console error, which would hide real ones)."""
    headers = {ERROR_HEADER: error.code} if error is not None else {}
    if fragment is not None and is_fragment():
        return render_template(fragment, error=error, fragment=True, **context), 200, headers
    return render_template(template, error=error, fragment=False, **context), error.status if error else 200, headers


def form_args(*names: str) -> dict[str, Any]:
    """The named form fields that were sent non-empty (an empty field means: the operation's default)."""
    return {n: request.form[n] for n in names if request.form.get(n, "").strip()}


@bp.errorhandler(LakehouseError)
def _lakehouse_error(exc: LakehouseError) -> tuple[str, int]:
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
    return _error_page(exc)


@bp.errorhandler(wz.HTTPException)
def _http_error(exc: wz.HTTPException) -> Response | wz.HTTPException | tuple[str, int]:
    if exc.code is None or exc.code < 400:
        return exc
    if isinstance(exc, wz.RequestEntityTooLarge):
        limit = get_lake().settings.max_upload_mb
        return _error_page(PayloadTooLarge(f"the upload is larger than {limit} MiB (max_upload_mb)"))
    err = LakehouseError(exc.description or exc.name, code=(exc.name or "error").lower().replace(" ", "_"))
    err.status = exc.code
    return _error_page(err)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str, int]:
    # the message may hold paths or SQL: it goes to the log, the page gets a fixed text
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return _error_page(LakehouseError("internal error (see the server log)"))


def _error_page(err: LakehouseError) -> tuple[str, int]:
    """A request that failed as a whole (a bad token, an unknown dataset in the URL): its real status."""
    return render_template("_error.html" if is_fragment() else "error.html", error=err), err.status

"""CSRF tokens for the web UI's forms: an HMAC of a per-browser nonce under a per-process secret.

The UI's POSTs are form-encoded (the JSON API refuses anything but `application/json`, which a page on another
site cannot send without asking first; an HTML form can). Each browser gets a random nonce in a cookie
(`HttpOnly`, `SameSite=Strict`: a request started by another site does not carry it), and every form a hidden
token, HMAC-SHA256(secret, nonce); HTMX sends the same token as the `X-CSRF-Token` header. A POST is accepted
only when the token matches the cookie's nonce. Unlike a plain double-submit (cookie value == form value),
nobody who can plant a cookie (a sibling subdomain, a plain-HTTP hop) can mint a matching token without the
secret. The secret lives in the app, so a restarted server asks for a reload (403) rather than trusting old
forms. guard_request's Host and Origin checks run first, on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, current_app, g, request

from lakehouse.errors import Forbidden

COOKIE = "lh_ui_session"
HEADER = "X-CSRF-Token"
FIELD = "csrf_token"
_SECRET = "lakehouse.ui.csrf_secret"


def install(app: Flask) -> None:
    """Give `app` its secret (once per app, so once per server process)."""
    app.extensions.setdefault(_SECRET, secrets.token_bytes(32))


def _sign(nonce: str) -> str:
    return hmac.new(current_app.extensions[_SECRET], nonce.encode(), hashlib.sha256).hexdigest()


def token() -> str:
    """The token for this browser's forms; a browser without a nonce gets one (set by `set_cookie`)."""
    nonce = request.cookies.get(COOKIE) or g.get("ui_new_nonce")
    if not nonce:
        nonce = g.ui_new_nonce = secrets.token_urlsafe(32)
    return _sign(nonce)


def check() -> None:
    """A POST's token must be the HMAC of the nonce its cookie carries: Forbidden (403) otherwise."""
    nonce = request.cookies.get(COOKIE, "")
    sent = request.headers.get(HEADER) or request.form.get(FIELD) or ""
    if not nonce or not hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), _sign(nonce).encode()):
        raise Forbidden("this form has expired or did not come from this site: reload the page and try again",
                        code="csrf_failed")


def set_cookie(response: Response) -> Response:
    nonce = g.get("ui_new_nonce")
    if nonce:
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", path="/",
                            secure=request.scheme == "https")
    return response

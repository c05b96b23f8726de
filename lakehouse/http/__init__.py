"""Lakehouse over HTTP: `create_app(lake)` builds the Flask app, `serve(lake)` runs it with waitress."""

from __future__ import annotations

from lakehouse.http.app import create_app

__all__ = ["create_app"]

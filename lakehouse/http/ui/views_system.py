"""System: live tails of storage errors, HNSW trials and recent ops, and the observer's stats (HTMX polling)."""

from __future__ import annotations

from typing import Any

from flask import abort, request

from lakehouse.http.ui.blueprint import attempt, bp, page

TAIL = 20
WINDOWS = ("5m", "1h", "24h", "7d")


def _ops_filter() -> dict[str, Any]:
    """The ops tail's filter from the query string; the UI's own calls (this page polling) are hidden unless
    asked for."""
    args = {k: request.args[k] for k in ("op", "origin", "status") if request.args.get(k)}
    if not request.args.get("show_ui") and "origin" not in args:
        args["exclude_origin"] = "ui"
    return args


PANELS = {
    "errors": ("_system_errors.html", lambda: attempt("storage.errors", limit=TAIL)),
    "trials": ("_system_trials.html", lambda: attempt("hnsw.trials", limit=TAIL)),
    "ops": ("_system_ops.html", lambda: attempt("observer.ops", _ops_filter(), text_args=True, limit=TAIL)),
    "stats": ("_system_stats.html", lambda: attempt("observer.stats", window=_window())),
}


def _window() -> str:
    window = request.args.get("window", "1h")
    return window if window in WINDOWS else "1h"


@bp.get("/ui/system")
def system() -> Any:
    panels = {name: dict(zip(("data", "error"), fetch())) for name, (_, fetch) in PANELS.items()}
    return page("system.html", panels=panels, windows=WINDOWS, window=_window(), args=request.args)


@bp.get("/ui/system/<panel>")
def system_panel(panel: str) -> Any:
    if panel not in PANELS:
        abort(404, f"no panel named {panel!r}")
    template, fetch = PANELS[panel]
    data, error = fetch()
    return page(template, template, data=data, error=error, windows=WINDOWS, window=_window())

"""The web UI (`/ui/...` and the staffing console at `/console`): Jinja pages with HTMX, served by the same app
and port as the JSON API. Every view is an adapter over operations, called with origin `ui`.

    Ask      /ui/ask        rag.ask
    Explore  /ui/explore    dataset.list / describe / rows, corpus.list / describe / rows / rebuild / rollback
    SQL      /ui/sql        sql.query
    System   /ui/system     storage.errors, hnsw.trials, observer.ops, observer.stats
    Upload   /ui/upload     dataset.ingest
    Console  /console       staffing.job_orders, staffing.fill_probability, matrix.search, playbook.*
"""

from __future__ import annotations

from lakehouse.http.ui import views_ask, views_console, views_explore, views_sql, views_system, views_upload
from lakehouse.http.ui.blueprint import bp

VIEWS = (views_ask, views_console, views_explore, views_sql, views_system, views_upload)  # imported: routes on bp

__all__ = ["bp"]

"""Upload: a CSV/TSV/JSON/NDJSON/Parquet file from the browser into a dataset (dataset.ingest)."""

from __future__ import annotations

from typing import Any

from flask import request

from lakehouse.errors import InvalidInput
from lakehouse.http.ui.blueprint import attempt, bp, call, form_args, page

FORMATS = ("auto", "csv", "tsv", "json", "ndjson", "parquet")
MODES = ("create", "append", "replace", "delta")


@bp.route("/ui/upload", methods=["GET", "POST"])
def upload() -> Any:
    context = {"formats": FORMATS, "modes": MODES}
    if request.method == "GET":
        return page("upload.html", result=None, datasets=call("dataset.list"), form={}, **context)
    file = request.files.get("file")
    args = form_args("dataset", "format", "mode", "key")
    if file is None or not file.filename:
        result, error = None, InvalidInput("choose a file to upload", code="missing_field", field="file")
    else:
        result, error = attempt("dataset.ingest", args, text_args=True, source=file.stream, filename=file.filename)
    return page("upload.html", "_upload_result.html", result=result, error=error, datasets=call("dataset.list"),
                form=request.form, **context)

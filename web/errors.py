"""One error path: engine errors become 4xx answers, JSON for the API and HTML otherwise.

Decision: the user never sees a stack trace; an unexpected error is logged and answered 500
with a reference, and expected ones name the field and the reason.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from engine.errors import Conflict, Forbidden, Invalid, NotFound, ValidationFailed

STATUS = {Invalid: 422, ValidationFailed: 422, Forbidden: 403, NotFound: 404, Conflict: 409}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _answer(status: int, message: str, fields: list[dict] | None = None):
    if _wants_json():
        body = {"error": message}
        if fields:
            body["fields"] = fields
        return jsonify(body), status
    return render_template(
        "error.html", status=status, message=message, fields=fields or []
    ), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return _answer(err.code or 500, err.description or err.name)

    for cls, status in STATUS.items():
        app.register_error_handler(cls, lambda err, status=status: _engine_error(err, status))

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        app.logger.exception("unexpected error on %s", request.path)
        return _answer(500, "an unexpected error happened; it was logged")


def _engine_error(err: Exception, status: int):
    fields = [{"field": e.field, "message": e.message} for e in getattr(err, "errors", [])]
    problems = [str(p) for p in getattr(err, "problems", [])]
    message = (
        err.reason if hasattr(err, "reason") else (str(err).split(":")[0] if fields else str(err))
    )
    return _answer(status, message, fields or [{"field": p, "message": ""} for p in problems])

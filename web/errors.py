"""One error path: engine errors become 4xx answers, JSON for the API and HTML otherwise.

Decision: the user never sees a stack trace; an unexpected error is logged and answered 500
with a reference, and expected ones name the field and the reason. The engine's English reason
is what the API answers (machine-readable, stable); a page says it in the reader's language.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext
from werkzeug.exceptions import HTTPException

from engine.errors import Conflict, Forbidden, Invalid, NotFound, ValidationFailed
from web.engine_words import words

STATUS = {Invalid: 422, ValidationFailed: 422, Forbidden: 403, NotFound: 404, Conflict: 409}

#: What a page says for an HTTP error raised with werkzeug's stock (English) description.
HTTP_WORDS = {
    400: lazy_gettext("The request could not be understood; go back and try again."),
    403: lazy_gettext("You may not see this page."),
    404: lazy_gettext("There is nothing at this address."),
    405: lazy_gettext("This page cannot be used that way."),
    413: lazy_gettext("What was sent is too large."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _answer(status: int, message: str, fields: list[dict] | None = None):
    if _wants_json():
        body = {"error": message}
        if fields:
            body["fields"] = fields
        return jsonify(body), status
    shown = [{**f, "message": words(f["message"])} for f in fields or []]
    return render_template(
        "error.html", status=status, message=words(message), fields=shown
    ), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        status, message = err.code or 500, err.description or err.name
        if not _wants_json() and message == type(err).description and status in HTTP_WORDS:
            message = str(HTTP_WORDS[status])
        return _answer(status, message)

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

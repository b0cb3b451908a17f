"""Serving an uploaded document to its owner, or to staff who may see its application.

Decision: the type sent is the one sniffed at upload, with `nosniff`, so a browser never runs a
document as something else; PDFs and images open inline (the reviewer page previews them).
"""

from __future__ import annotations

from flask import current_app, send_file
from flask_login import login_required

from engine import documents
from web import settings_of
from web.access import current_actor
from web.apply import bp
from web.extensions import db


@bp.get("/documents/<int:document_id>")
@login_required
def document(document_id: int):
    found, path = documents.open_for(
        db.session, settings_of(current_app), document_id, current_actor()
    )
    answer = send_file(
        path,
        mimetype=found.content_type,
        as_attachment=found.content_type not in documents.INLINE,
        download_name=found.name,
        conditional=True,
        max_age=0,
    )
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Cache-Control"] = "private, no-store"
    return answer

"""The application being filled in, kept between the form and the confirm page.

Decision: the draft lives in the signed session, never in hidden form fields, and holds only the
typed values and the ids of the applicant's uploaded documents; the documents themselves are
looked up again (and must still be the applicant's) whenever the draft is read.
"""

from __future__ import annotations

from typing import Any

from flask import session

from engine import documents
from engine.models import Document
from web.extensions import db

KEY = "apply_drafts"


def load(key: str, owner: str) -> tuple[dict[str, Any], dict[str, list[Document]]]:
    """(values without documents, documents by field) of the draft for bundle `key`."""
    draft = session.get(KEY, {}).get(key) or {}
    ids = draft.get("documents", {})
    docs = {name: documents.owned(db.session, owner, list(v)) for name, v in ids.items()}
    return dict(draft.get("values", {})), docs


def save(key: str, values: dict[str, Any], docs: dict[str, list[Document]]) -> None:
    drafts = dict(session.get(KEY, {}))
    drafts[key] = {
        "values": {k: v for k, v in values.items() if k not in docs},
        "documents": {name: [d.id for d in rows] for name, rows in docs.items()},
    }
    session[KEY] = drafts


def forget(key: str) -> None:
    drafts = dict(session.get(KEY, {}))
    drafts.pop(key, None)
    session[KEY] = drafts


def data(values: dict[str, Any], docs: dict[str, list[Document]]) -> dict[str, Any]:
    """The form data the engine gets: the values and each document field's items."""
    return {
        **values,
        **{name: [documents.as_field(d) for d in rows] for name, rows in docs.items()},
    }

"""The application being filled in, kept between the form and the confirm page.

Decision: the draft lives on the server (engine/drafts.py), never in the session cookie (a
browser drops a cookie over 4 KB, and a cookie replayed by a double click would submit twice) nor
in hidden form fields. It holds only the typed values and the ids of the applicant's uploaded
documents; the documents are looked up again (and must still be the applicant's) whenever the
draft is read. The session keeps just the id of each draft saved, so that a submit finding no
draft can tell "already submitted" from "never filled in".
"""

from __future__ import annotations

from typing import Any

from flask import session
from flask_login import current_user

from engine import documents
from engine import drafts as stored
from engine.models import Document
from web.extensions import db

KEY = "apply_draft_ids"  # {key: draft id}; once held whole drafts under "apply_drafts"


def load(key: str, owner: str) -> tuple[dict[str, Any], dict[str, list[Document]]]:
    """(values without documents, documents by field) of the draft for `key`."""
    row = stored.load(db.session, owner, key)
    return _unpack(owner, row.data if row else {})


def save(key: str, values: dict[str, Any], docs: dict[str, list[Document]]) -> None:
    row = stored.save(
        db.session,
        current_user.username,
        key,
        {
            "values": {k: v for k, v in values.items() if k not in docs},
            "documents": {name: [d.id for d in rows] for name, rows in docs.items()},
        },
    )
    session[KEY] = {**session.get(KEY, {}), key: row.id}


def consume(key: str, owner: str) -> tuple[dict[str, Any], dict[str, list[Document]]] | None:
    """Take the draft out for submitting (in the view's transaction); None if there is none."""
    taken = stored.consume(db.session, owner, key)
    return None if taken is None else _unpack(owner, taken)


def was_saved(key: str) -> bool:
    """Whether this session saved a draft for `key` (so a missing one was submitted already)."""
    return key in session.get(KEY, {})


def forget(key: str) -> None:
    """After the view committed: drop the draft, if still there, and its id in the session."""
    stored.discard(db.session, current_user.username, key)
    db.session.commit()
    session[KEY] = {k: v for k, v in session.get(KEY, {}).items() if k != key}


def _unpack(owner: str, draft: dict[str, Any]) -> tuple[dict, dict[str, list[Document]]]:
    ids = draft.get("documents", {})
    docs = {name: documents.owned(db.session, owner, list(v)) for name, v in ids.items()}
    return dict(draft.get("values", {})), docs


def data(values: dict[str, Any], docs: dict[str, list[Document]]) -> dict[str, Any]:
    """The form data the engine gets: the values and each document field's items."""
    return {
        **values,
        **{name: [documents.as_field(d) for d in rows] for name, rows in docs.items()},
    }

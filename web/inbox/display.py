"""How the inbox draws values: China-time dates, amounts, group and type names, document links.

Decision: formatting lives here, once, and reaches the inbox's templates through the blueprint's
context processor; the engine hands over plain values (UTC datetimes, Decimals, keys).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import url_for
from flask_babel import get_locale, lazy_gettext
from sqlalchemy import select
from werkzeug.routing import BuildError

from engine import clock
from engine.identifiers import CHINA
from engine.models import Group
from web.engine_words import words
from web.extensions import db
from web.inbox import bp

TYPE_NAMES = {
    "personal_loan": lazy_gettext("Personal loan"),
    "credit_card": lazy_gettext("Credit card"),
    "enterprise_loan": lazy_gettext("Enterprise loan"),
    "sample_approval": lazy_gettext("Sample approval"),
}


def when(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


def money(amount: Decimal | int | float | None) -> str:
    if amount is None:
        return ""
    return f"{amount:,.2f}".removesuffix(".00")


def type_name(key: str) -> str:
    return str(TYPE_NAMES.get(key, key))


def locale() -> str:
    return str(get_locale() or "zh")


def document_url(document_id: int) -> str:
    """The applicant area's download URL of a document (its route if that area is built)."""
    for name in ("document_id", "id"):
        try:
            return url_for("apply.document", **{name: document_id})
        except BuildError:
            continue
    return f"/applications/documents/{document_id}"


def group_names() -> dict[str, str]:
    english = locale() == "en"
    rows = db.session.execute(select(Group.key, Group.name_zh, Group.name_en))
    return {key: (en if english else zh) or key for key, zh, en in rows}


@bp.context_processor
def helpers():
    return {
        "when": when,
        "money": money,
        "type_name": type_name,
        "document_url": document_url,
        "locale": locale(),
        "now": clock.now(),
        "explain": words,
    }

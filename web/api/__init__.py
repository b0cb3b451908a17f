"""The JSON API: what the pages do, for other systems — apply, follow, work the inbox.

Decision: a request authenticates with `Authorization: Bearer <token>` only (no cookie), so it
needs no CSRF token; it acts as the token's user with the same engine checks and the same form
schemas as the pages, and errors are JSON naming the field and the reason (web/errors.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, g, request

from engine import api_tokens
from engine.config import Settings
from engine.directory import Actor
from web import settings_of
from web.extensions import csrf, db

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    secret = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    user = api_tokens.user_for(db.session, secret) if secret else None
    if user is None:
        abort(401, "send `Authorization: Bearer <token>` with a valid API token")
    db.session.commit()  # last_used_at
    g.actor = Actor(user.username, frozenset(user.group_keys))
    g.locale = user.locale


def actor() -> Actor:
    return g.actor


def staff_only() -> None:
    if not g.actor.groups:
        abort(403, "this endpoint is for the bank's staff")


def applicant_only() -> None:
    if g.actor.groups:
        abort(403, "this endpoint is for applicants")


def settings() -> Settings:
    return settings_of(current_app)


def plain(value: Any) -> Any:
    """A dataclass as JSON: datetimes and decimals as text, tuples as lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def body() -> dict[str, Any]:
    """The request's JSON object; 400 naming what is wrong otherwise."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "the body must be a JSON object (Content-Type: application/json)")
    return data


from web.api import applications, tasks  # noqa: E402,F401  (the routes)

"""Credentials for the JSON API: a token acts as its user; only its SHA-256 is stored.

Decision: a token is shown once when issued and never again (the database keeps a hash, so a
copy of the database gives no working token); it stops working when revoked or when its user
is deactivated. It replaces the password and second factor for machine clients, so it is
issued by an administrator (`approval api-token issue`), never by a web form.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import NotFound
from engine.models import ApiToken, User

PREFIX = "sa_"
#: last_used_at is written at most this often, so reads do not turn every request into a write.
TOUCH_EVERY = timedelta(minutes=5)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(session: Session, username: str, name: str) -> str:
    """A new token for `username`; the secret is returned once and stored only as a hash."""
    user = session.scalar(select(User).where(User.username == username, User.is_active))
    if user is None:
        raise NotFound(f"no active user `{username}`")
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_hash(secret)))
    session.flush()
    return secret


def user_for(session: Session, secret: str) -> User | None:
    """The active user a token acts for, or None (unknown, revoked, user deactivated)."""
    if not secret.startswith(PREFIX):
        return None
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _hash(secret), ApiToken.revoked_at.is_(None))
    )
    user = session.get(User, token.user_id) if token is not None else None
    if user is None or not user.is_active:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        token.last_used_at = now
    return user


def revoke(session: Session, username: str, name: str) -> int:
    """Revoke `username`'s tokens called `name`; how many were still valid."""
    rows = session.scalars(
        select(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .where(User.username == username, ApiToken.name == name, ApiToken.revoked_at.is_(None))
    ).all()
    for token in rows:
        token.revoked_at = clock.now()
    return len(rows)

"""Who is asking: the signed-in user as an engine `Actor`, and the role checks views declare.

Decision: every view states its audience with one decorator from here (`applicant_required`,
`staff_required`); object-level checks (whose application, which group's task) live in the
engine (`engine.permissions`), so a rule is written once for the UI and the API.
"""

from __future__ import annotations

import functools

from flask import abort, session
from flask_login import UserMixin, current_user, login_required

from engine.directory import Actor
from engine.models import User
from web.extensions import db, login_manager


class SignedIn(UserMixin):
    """The engine's `User` as Flask-Login needs it (the engine does not know Flask-Login)."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    def __getattr__(self, name: str):
        return getattr(self.user, name)


#: The account's `session_version` a session was signed in with (web/auth/gate.py).
SESSION_VERSION = "auth_version"


@login_manager.user_loader
def load_user(user_id: str) -> SignedIn | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.is_active:
        return None
    # A cookie kept from before a sign-out or a change of second factor is worth nothing.
    if session.get(SESSION_VERSION, 0) != (user.session_version or 0):
        return None
    return SignedIn(user)


def is_staff(user: User | SignedIn) -> bool:
    """Staff are the members of any group; applicants belong to none."""
    return bool(user.group_keys)


def current_actor() -> Actor:
    return Actor(current_user.username, frozenset(current_user.group_keys))


def applicant_required(view):
    """Signed in, and not staff: a reviewer cannot apply in the bank's own system."""

    @login_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if is_staff(current_user):
            abort(403, "this page is for applicants")
        return view(*args, **kwargs)

    return wrapper


def staff_required(view):
    @login_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not is_staff(current_user):
            abort(403, "this page is for the bank's staff")
        return view(*args, **kwargs)

    return wrapper

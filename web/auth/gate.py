"""The half-way states of signing in, kept in the session, and where to go afterwards.

Decision: every change of who is signed in starts from an emptied session (only the chosen
language survives), so a session fixed before sign-in is worth nothing after it. A person who
passed the password but not yet the second factor is "pending" for five minutes; staff who have
no second factor yet are signed in but held on the security page until they enrol TOTP. A
session remembers the account's `session_version` it was signed in with (see `web.access`), and
is permanent so that it ends after PERMANENT_SESSION_LIFETIME without a request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, request, session, url_for
from flask_login import login_user

from engine import accounts, clock
from engine.accounts import has_control_characters
from engine.config import Settings
from engine.models import User
from web import settings_of
from web.access import SESSION_VERSION, SignedIn, is_staff
from web.extensions import db

PENDING = "auth_pending"
ENROL_FIRST = "auth_enrol_first"
PENDING_SECONDS = 300
#: Where a person held for TOTP enrolment may still go.
OPEN_WHILE_ENROLLING = {"auth.security", "auth.logout", "auth.captcha", "static", "i18n.switch"}


def settings() -> Settings:
    return settings_of(current_app)


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the home page (no open redirect, and no
    line break that would split the Location header)."""
    target = (target or "").strip()
    if has_control_characters(target):
        return url_for("home.index")
    parts = urlsplit(target)
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    if local and not parts.scheme and not parts.netloc:
        return target
    return url_for("home.index")


def fresh_session() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def after_password(user: User, target: str | None) -> str:
    """Where to go once the password is right: a second factor, enrolment, or `target`."""
    target = safe_next(target)
    fresh_session()
    if user.second_factor != "none":
        session[PENDING] = {"user": user.id, "next": target, "at": clock.now().timestamp()}
        return url_for("auth.second_factor")
    sign_in(user)
    if is_staff(user):
        session[ENROL_FIRST] = True
        return url_for("auth.security", next=target)
    return target


def pending_user() -> User | None:
    pending = session.get(PENDING)
    if not pending or clock.now().timestamp() - pending["at"] > PENDING_SECONDS:
        return None
    return db.session.get(User, pending["user"])


def pending_next() -> str:
    return safe_next((session.get(PENDING) or {}).get("next"))


def sign_in(user: User) -> None:
    """Sign `user` in on an emptied session and write it to their audit stream."""
    fresh_session()
    login_user(SignedIn(user))
    session.permanent = True  # so that an idle session ends (PERMANENT_SESSION_LIFETIME)
    remember_version(user)
    accounts.signed_in(db.session, settings(), user, address=request.remote_addr)


def remember_version(user: User) -> None:
    """This session stays valid for `user`'s current version (after a change they made here)."""
    session[SESSION_VERSION] = user.session_version or 0


def hold_for_enrolment():
    """Before every request: staff without a second factor may only enrol (or leave)."""
    if session.get(ENROL_FIRST) and request.endpoint not in OPEN_WHILE_ENROLLING:
        return redirect(url_for("auth.security"))
    return None

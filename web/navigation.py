"""What the top bar offers the person signed in (or not), and their unread message count."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user
from werkzeug.routing import BuildError

from engine import notifications
from web.access import is_staff
from web.extensions import db


@dataclass(frozen=True)
class Link:
    url: str
    label: str
    active: bool = False
    badge: int = 0
    #: POST for actions (signing out), drawn as a button in a form with the CSRF token.
    method: str = "GET"


def _link(endpoint: str, label: str, badge: int = 0) -> Link | None:
    try:
        url = url_for(endpoint)
    except BuildError:  # an area not built into this app
        return None
    method = "POST" if endpoint == "auth.logout" else "GET"
    return Link(url, label, request.path.startswith(url) and url != "/", badge, method)


def _links() -> list[Link]:
    if not current_user.is_authenticated:
        wanted = [("auth.login", gettext("Sign in")), ("auth.register", gettext("Register"))]
        return [link for e, label in wanted if (link := _link(e, label))]
    unread = notifications.unread_count(db.session, current_user.username)
    if is_staff(current_user):
        wanted = [("inbox.index", gettext("Task inbox"), 0)]
    else:
        wanted = [
            ("apply.index", gettext("Apply"), 0),
            ("apply.mine", gettext("My applications"), 0),
        ]
    wanted += [
        ("track.lookup", gettext("Track an application"), 0),
        ("track.messages", gettext("Messages"), unread),
        ("auth.security", gettext("Security"), 0),
        ("auth.logout", gettext("Sign out"), 0),
    ]
    return [link for e, label, badge in wanted if (link := _link(e, label, badge))]


def register(app: Flask) -> None:
    @app.context_processor
    def top_bar():
        return {"nav_links": _links(), "current_locale": str(get_locale() or "zh")}

"""Languages: Chinese by default, English on request; the choice is kept in the session.

Decision: each blueprint keeps its own catalogue (`web/<area>/translations`), merged by
Flask-Babel, so areas are translated independently; English strings are the message ids.
"""

from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for
from flask_login import current_user

LANGUAGES = ("zh", "en")
AREAS = ("", "auth", "apply", "track", "inbox")

bp = Blueprint("i18n", __name__)


def translation_directories() -> str:
    return ";".join(f"{area}/translations" if area else "translations" for area in AREAS)


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    return "zh"


@bp.get("/lang/<code>")
def switch(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    target = request.referrer or url_for("home.index")
    # Only ever go back to a page of this site.
    if not target.startswith(request.host_url):
        target = url_for("home.index")
    return redirect(target)

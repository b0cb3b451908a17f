"""The start page: where a signed-in person works, or what a visitor can apply for; health.

Decision: the start page sends people to their own area (staff to the task inbox, applicants to
the approval types), so a bookmark of "/" always lands somewhere useful.
"""

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user

from engine import bundles
from web.access import is_staff
from web.extensions import db

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index" if is_staff(current_user) else "apply.index"))
    versions = bundles.live_versions(db.session)
    return render_template("home.html", versions=versions)


@bp.get("/healthz")
def health():
    db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")

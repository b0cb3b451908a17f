"""Progress pages: look an application up by its number, read its progress, fetch its diagram."""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale, lazy_gettext
from flask_login import current_user, login_required
from werkzeug.routing import BuildError

from engine import progress
from web import settings_of
from web.access import current_actor
from web.extensions import db
from web.track import bp

#: The approval types' names (the bundle key shows for a type deployed later).
TYPES = {
    "personal_loan": lazy_gettext("Personal loan"),
    "credit_card": lazy_gettext("Credit card"),
    "enterprise_loan": lazy_gettext("Enterprise loan"),
}
#: Where the viewer script and its styles are copied by `npm ci` (scripts/copy-vendor.mjs).
VIEWER = "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"


@bp.get("/")
@login_required
def lookup():
    reference = request.args.get("reference", "").strip().upper()
    if reference:
        return redirect(url_for("track.detail", reference=reference))
    return render_template("track/lookup.html")


@bp.get("/<reference>")
@login_required
def detail(reference: str):
    settings = settings_of(current_app)
    seen = progress.of(db.session, settings, reference, current_actor(), _locale())
    return render_template(
        "track/detail.html",
        p=seen,
        type_name=TYPES.get(seen.bundle_key, seen.bundle_key),
        is_applicant=seen.started_by == current_user.username,
        task_url=task_url,
        viewer=VIEWER if _has_viewer() else None,
    )


@bp.get("/<reference>/diagram.bpmn")
@login_required
def diagram(reference: str):
    xml = progress.diagram(db.session, reference, current_actor())
    response = Response(xml, mimetype="application/xml")
    # Data to draw, never a document to run: opened directly, nothing in it may execute.
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def task_url(instance_id: int, task_id: int) -> str:
    """The applicant's own task (supply information, sign the contract) in the apply area."""
    try:
        return url_for("apply.task", instance_id=instance_id, task_id=task_id)
    except BuildError:  # the apply area is not built into this app
        return f"/applications/{instance_id}/task/{task_id}"


def _locale() -> str:
    return str(get_locale() or "zh")


def _has_viewer() -> bool:
    # Without `npm ci` the page still shows everything but the drawing, and says so.
    return (Path(current_app.static_folder or "") / VIEWER).is_file()

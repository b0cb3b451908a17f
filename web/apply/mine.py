"""My applications: the list with each one's state, and withdrawing one."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from engine import applications
from engine.errors import Conflict
from web import settings_of
from web.access import applicant_required, current_actor
from web.apply import bp
from web.apply.pages import progress_url
from web.engine_words import words
from web.extensions import db

PER_PAGE = 20


@bp.get("/mine")
@applicant_required
def mine():
    page = request.args.get("page", 1, type=int) or 1
    found = applications.mine(db.session, current_actor().username, page=page, per_page=PER_PAGE)
    return render_template("apply/mine.html", page=found, progress_url=progress_url)


@bp.post("/<int:instance_id>/withdraw")
@applicant_required
def withdraw(instance_id: int):
    try:
        row = applications.withdraw(
            db.session, settings_of(current_app), instance_id, current_actor()
        )
    except Conflict as refused:
        db.session.rollback()
        flash(words(str(refused)), "error")
        return redirect(url_for("apply.mine")), 303
    db.session.commit()
    flash(gettext("Application %(ref)s was withdrawn.", ref=row.reference))
    return redirect(url_for("apply.mine")), 303

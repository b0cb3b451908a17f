"""The inbox's actions on a task: claim, release, transfer, complete.

Decision: a lost race (someone else took or finished the task) and a refusal (segregation of
duties, not your group) are answered with a message and a redirect, never an error page; only a
refused decision form is drawn again, with the errors next to its fields (422).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext

from engine import inbox, review, runtime
from engine.errors import Conflict, Forbidden, Invalid
from web import schema_forms
from web.access import current_actor, staff_required
from web.engine_words import words
from web.extensions import db
from web.inbox import bp
from web.inbox.pages import draw_task


def _settings():
    return current_app.extensions["approval"]


def _refused(err: Exception, task_id: int):
    """Undo, say why, and go where the reviewer can carry on."""
    db.session.rollback()
    if isinstance(err, Conflict):
        flash(
            gettext("Someone else got there first: %(reason)s", reason=words(str(err))),
            "error",
        )
        return redirect(url_for("inbox.index"))
    flash(gettext("Not allowed: %(reason)s", reason=words(str(err))), "error")
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.post("/tasks/<int:task_id>/claim")
@staff_required
def claim(task_id: int):
    try:
        inbox.claim(db.session, _settings(), task_id, current_actor())
    except (Conflict, Forbidden) as err:
        return _refused(err, task_id)
    db.session.commit()
    flash(gettext("The task is yours now."))
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.post("/tasks/<int:task_id>/release")
@staff_required
def release(task_id: int):
    try:
        inbox.release(db.session, _settings(), task_id, current_actor())
    except (Conflict, Forbidden) as err:
        return _refused(err, task_id)
    db.session.commit()
    flash(gettext("The task is back in its group's inbox."))
    return redirect(url_for("inbox.index"))


@bp.post("/tasks/<int:task_id>/transfer")
@staff_required
def transfer(task_id: int):
    to = request.form.get("to", "").strip()
    try:
        inbox.transfer(db.session, _settings(), task_id, current_actor(), to)
    except (Conflict, Forbidden) as err:
        return _refused(err, task_id)
    db.session.commit()
    flash(gettext("The task was handed to %(name)s.", name=to))
    return redirect(url_for("inbox.index"))


@bp.post("/tasks/<int:task_id>/complete")
@staff_required
def complete(task_id: int):
    settings, actor = _settings(), current_actor()
    view = review.task_page(db.session, settings, task_id, actor)
    data = schema_forms.parse(view.form_schema or {}, request.form)
    try:
        runtime.complete_task(
            db.session, settings, task_id, actor, data, defer=settings.defer_steps
        )
    except Invalid as refused:
        db.session.rollback()
        return draw_task(view, data, refused.errors), 422
    except (Conflict, Forbidden) as err:
        return _refused(err, task_id)
    db.session.commit()
    return _next(actor)


def _next(actor):
    following = inbox.next_task(db.session, actor)
    if following is None:
        flash(gettext("Decision recorded. Your inbox is empty."))
        return redirect(url_for("inbox.index"))
    flash(gettext("Decision recorded; here is your next task."))
    return redirect(url_for("inbox.task", task_id=following.id))

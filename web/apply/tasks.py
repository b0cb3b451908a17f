"""The applicant's own open tasks: supply missing information (补件), sign the contract.

Decision: the task's form is drawn from its schema, prefilled with the application's current
data; a signature needs the applicant's second factor (an app code, else an SMS code), which
the engine checks only once the form itself is right.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from engine import applications, documents, forms, second_factor
from engine.errors import Conflict, FieldError, Invalid
from web import schema_forms, settings_of
from web.access import applicant_required, current_actor
from web.apply import bp, drafts, uploads
from web.engine_words import words
from web.extensions import db


def _task(instance_id: int, task_id: int) -> applications.MyTask:
    return applications.my_task(
        db.session, settings_of(current_app), instance_id, task_id, current_actor()
    )


def _draft(task: applications.MyTask) -> tuple[dict, dict]:
    """(values, documents by field) so far: a draft from an earlier post (uploads kept), else
    the application's current data."""
    key = f"task-{task.id}"
    values, docs = drafts.load(key, current_user.username)
    if values or any(docs.values()):
        return values, docs
    names = uploads.document_fields(task.form.schema, task.form.uischema)
    owner = current_user.username
    docs = {n: documents.named(db.session, owner, task.values.get(n) or []) for n in names}
    return {k: v for k, v in task.values.items() if k not in docs}, docs


def _posted(task: applications.MyTask) -> tuple[dict, dict, list[FieldError]]:
    """The posted values and documents (uploads stored, kept in a draft) and upload errors."""
    form = task.form
    skip = tuple(uploads.document_fields(form.schema, form.uischema))
    values = schema_forms.parse(form.schema, request.form, skip)
    docs, errors = uploads.receive(
        form.schema, form.uischema, current_user.username, _draft(task)[1]
    )
    drafts.save(f"task-{task.id}", values, docs)
    if errors:  # show the form's own errors too, all at once
        try:
            forms.validate(form.text, drafts.data(values, docs))
        except Invalid as refused:
            errors += refused.errors
    return values, docs, errors


def _render(task, values, docs, errors: list[FieldError], status: int = 200):
    form = task.form
    method = second_factor.method(settings_of(current_app), current_user.user)
    return render_template(
        "apply/task.html",
        task=task,
        fields=schema_forms.fields(form.schema, form.uischema, values, errors),
        documents=uploads.draw(form.schema, form.uischema, docs, errors),
        form_errors=schema_forms.form_errors([e for e in errors if e.field != "code"], form.schema),
        code_errors=[words(e.message) for e in errors if e.field == "code"],
        method=method,
    ), status


def _gone(refused: Conflict):
    db.session.rollback()
    flash(
        gettext("This task can no longer be completed: %(why)s", why=words(str(refused))), "error"
    )
    return redirect(url_for("apply.mine")), 303


@bp.get("/<int:instance_id>/task/<int:task_id>")
@applicant_required
def task(instance_id: int, task_id: int):
    try:
        found = _task(instance_id, task_id)
    except Conflict as refused:
        return _gone(refused)
    return _render(found, *_draft(found), [])


@bp.post("/<int:instance_id>/task/<int:task_id>")
@applicant_required
def complete(instance_id: int, task_id: int):
    settings = settings_of(current_app)
    try:
        found = _task(instance_id, task_id)
    except Conflict as refused:
        return _gone(refused)
    values, docs, errors = _posted(found)
    db.session.commit()  # what was uploaded is kept, whatever happens next
    if errors:
        return _render(found, values, docs, errors, 422)
    try:
        applications.complete_my_task(
            db.session, settings, instance_id, task_id, current_actor(), drafts.data(values, docs),
            defer=settings.defer_steps, code=request.form.get("code"),
        )  # fmt: skip
    except Invalid as refused:
        _keep_attempt(refused)
        return _render(found, values, docs, refused.errors, 422)
    except Conflict as refused:
        return _gone(refused)
    db.session.commit()
    drafts.forget(f"task-{task_id}")
    flash(gettext("Thank you: “%(task)s” is done.", task=found.name))
    return redirect(url_for("apply.mine")), 303


def _keep_attempt(refused: Invalid) -> None:
    """A wrong second-factor code counts an attempt, which must be kept; anything else that
    was refused is undone."""
    if any(e.field == "code" for e in refused.errors):
        db.session.commit()
    else:
        db.session.rollback()


@bp.post("/<int:instance_id>/task/<int:task_id>/code")
@applicant_required
def send_code(instance_id: int, task_id: int):
    """Text a signing code to the applicant's phone."""
    if not _task(instance_id, task_id).needs_second_factor:
        abort(404)
    try:
        second_factor.send_code(db.session, settings_of(current_app), current_user.user, "sign")
    except Invalid as refused:
        db.session.rollback()
        flash(words(refused.errors[0].message), "error")
    else:
        db.session.commit()
        flash(gettext("A code was sent to your phone."))
    return redirect(url_for("apply.task", instance_id=instance_id, task_id=task_id)), 303

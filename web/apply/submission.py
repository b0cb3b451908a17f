"""Applying: the types on offer, the form, the confirm page, and the number once submitted."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from engine import applications, forms
from engine.errors import FieldError, Invalid
from web import schema_forms, settings_of
from web.access import applicant_required, current_actor
from web.apply import bp, drafts, uploads
from web.apply.pages import progress_url, shown_values
from web.extensions import db


@bp.get("/")
@applicant_required
def index():
    return render_template("apply/index.html", types=applications.types(db.session))


def _render_form(key: str, form, values, docs, errors: list[FieldError], status: int = 200):
    return render_template(
        "apply/form.html",
        key=key,
        form=form,
        fields=schema_forms.fields(form.schema, form.uischema, values, errors),
        documents=uploads.draw(form.schema, form.uischema, docs, errors),
        form_errors=schema_forms.form_errors(errors, form.schema),
    ), status


@bp.get("/new/<key>")
@applicant_required
def new(key: str):
    form = applications.application_form(db.session, key)
    values, docs = drafts.load(key, current_user.username)
    return _render_form(key, form, values, docs, [])


@bp.post("/new/<key>")
@applicant_required
def fill(key: str):
    """Store the uploads, keep the draft, check it on the server against the form."""
    form = applications.application_form(db.session, key)
    _, docs = drafts.load(key, current_user.username)
    skip = tuple(uploads.document_fields(form.schema, form.uischema))
    values = schema_forms.parse(form.schema, request.form, skip)
    docs, errors = uploads.receive(form.schema, form.uischema, current_user.username, docs)
    drafts.save(key, values, docs)
    try:
        forms.validate(form.text, drafts.data(values, docs))
    except Invalid as refused:
        errors += refused.errors
    db.session.commit()  # the uploads are kept even when the form goes back with errors
    if errors:
        return _render_form(key, form, values, docs, errors, 422)
    return redirect(url_for("apply.confirm", key=key))


@bp.get("/new/<key>/confirm")
@applicant_required
def confirm(key: str):
    form = applications.application_form(db.session, key)
    values, docs = drafts.load(key, current_user.username)
    if not values and not any(docs.values()):
        return redirect(url_for("apply.new", key=key))
    rows = shown_values(form, drafts.data(values, docs))
    return render_template(
        "apply/confirm.html",
        key=key,
        form=form,
        rows=rows,
        documents=uploads.draw(form.schema, form.uischema, docs, []),
    )


@bp.post("/new/<key>/submit")
@applicant_required
def submit(key: str):
    """Consume the draft and start the application in one transaction: a second click finds
    no draft and is told the application went in, instead of starting another."""
    form = applications.application_form(db.session, key)
    taken = drafts.consume(key, current_user.username)
    if taken is None and drafts.was_saved(key):
        flash(gettext("This application was already submitted."))
        return redirect(url_for("apply.mine")), 303
    values, docs = taken or ({}, {})
    settings = settings_of(current_app)
    try:
        row = applications.submit(
            db.session, settings, key, drafts.data(values, docs), current_actor(),
            defer=settings.defer_steps,
        )  # fmt: skip
    except Invalid as refused:
        db.session.rollback()
        return _render_form(key, form, values, docs, refused.errors, 422)
    db.session.commit()
    drafts.forget(key)
    return redirect(url_for("apply.submitted", instance_id=row.id))


@bp.get("/<int:instance_id>/submitted")
@applicant_required
def submitted(instance_id: int):
    application = applications.my_application(db.session, instance_id, current_actor())
    return render_template(
        "apply/submitted.html",
        application=application,
        progress=progress_url(application.reference),
    )

"""API for applicants: the types, their forms, applying, my applications, progress, withdraw."""

from __future__ import annotations

from dataclasses import asdict

from flask import abort, jsonify, url_for

from engine import applications, progress
from engine.errors import Invalid
from web.api import actor, applicant_only, body, bp, plain, settings
from web.extensions import db


@bp.get("/types")
def types():
    return jsonify([asdict(t) for t in applications.types(db.session)])


@bp.get("/types/<key>/form")
def form(key: str):
    spec = applications.application_form(db.session, key)
    return jsonify(path=spec.path, schema=spec.schema, uischema=spec.uischema)


@bp.post("/applications")
def apply():
    applicant_only()
    data = body()
    key, fields = data.get("type"), data.get("data")
    if not isinstance(key, str) or not isinstance(fields, dict):
        abort(400, 'send {"type": "<approval type>", "data": {<form fields>}}')
    row = applications.submit(
        db.session, settings(), key, fields, actor(), defer=settings().defer_steps
    )
    db.session.commit()
    where = url_for("api.application", reference=row.reference)
    return jsonify(id=row.id, reference=row.reference, status=row.status), 201, {"Location": where}


@bp.get("/applications")
def mine():
    page = applications.mine(db.session, actor().username)
    return jsonify(total=page.total, applications=[plain(asdict(v)) for v in page.items])


@bp.get("/applications/<reference>")
def application(reference: str):
    found = progress.of(db.session, settings(), reference, actor(), locale="en")
    return jsonify(plain(asdict(found)))


@bp.post("/applications/<reference>/withdraw")
def withdraw(reference: str):
    row = progress.find(db.session, reference, actor())
    applications.withdraw(db.session, settings(), row.id, actor())
    db.session.commit()
    return jsonify(reference=reference, status="cancelled")


@bp.post("/applications/<reference>/tasks/<int:task_id>/complete")
def complete_my_task(reference: str, task_id: int):
    """The applicant's own task (more information, a signature): body {"data": {...}} and, to
    sign, "code" (the authenticator's or the SMS code, as on the page)."""
    applicant_only()
    sent = body()
    data, code = sent.get("data"), sent.get("code")
    if not isinstance(data, dict) or not isinstance(code, str | None):
        abort(400, 'send {"data": {<the form\'s fields>}, "code": "<second factor, to sign>"}')
    row = progress.find(db.session, reference, actor())
    try:
        human = applications.complete_my_task(
            db.session,
            settings(),
            row.id,
            task_id,
            actor(),
            data,
            defer=settings().defer_steps,
            code=code,
        )
    except Invalid:
        db.session.commit()  # a wrong code counts toward the lock-out (see complete_my_task)
        raise
    db.session.commit()
    return jsonify(task=task_id, state=human.state, reference=reference)

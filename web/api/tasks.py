"""API for reviewers and approvers: the inbox, a task with its application, claim, complete."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal, InvalidOperation

from flask import jsonify, request

from engine import inbox, review, runtime
from engine.errors import FieldError, Invalid
from web.api import actor, body, bp, plain, settings, staff_only
from web.extensions import db


def _query() -> inbox.InboxQuery:
    """The inbox filters of the query string; Invalid naming a value that is not a number."""
    args, problems = request.args, []

    def number(name: str, kind=int):
        raw = args.get(name)
        try:
            return kind(raw) if raw not in (None, "") else None
        except (ValueError, InvalidOperation):
            problems.append(FieldError(name, "should be a number"))
            return None

    query = inbox.InboxQuery(
        bundle_key=args.get("type") or None,
        min_amount=number("min_amount", Decimal),
        max_amount=number("max_amount", Decimal),
        risk_grade=args.get("risk_grade") or None,
        due=args.get("due") or None,
        sort=args.get("sort", "created"),
        descending=args.get("order") == "desc",
        page=number("page") or 1,
        page_size=number("page_size") or 20,
    )
    if problems:
        raise Invalid(problems, "the inbox filter is invalid")
    return query


@bp.get("/tasks")
def tasks():
    staff_only()
    page = inbox.inbox_page(db.session, actor(), _query())
    return jsonify(
        total=page.total,
        page=page.page,
        pages=page.pages,
        tasks=[plain(asdict(t)) for t in page.tasks],
    )


@bp.get("/tasks/<int:task_id>")
def task(task_id: int):
    staff_only()  # the reviewers' view (scores, reasons, opinions) is not the applicant's
    view = review.task_page(db.session, settings(), task_id, actor())
    return jsonify(plain(asdict(view)))


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id: int):
    staff_only()
    view = inbox.claim(db.session, settings(), task_id, actor())
    db.session.commit()
    return jsonify(plain(asdict(view)))


@bp.post("/tasks/<int:task_id>/release")
def release(task_id: int):
    staff_only()
    view = inbox.release(db.session, settings(), task_id, actor())
    db.session.commit()
    return jsonify(plain(asdict(view)))


@bp.post("/tasks/<int:task_id>/complete")
def complete(task_id: int):
    """Body: {"data": {<the task form's fields>}}; 422 with every field and reason otherwise.
    Applicants complete their own tasks under /api/applications (a signature needs a code)."""
    staff_only()
    data = body().get("data")
    if not isinstance(data, dict):
        raise Invalid([FieldError("data", "send the form's fields as an object")])
    human = runtime.complete_task(
        db.session, settings(), task_id, actor(), data, defer=settings().defer_steps
    )
    db.session.commit()
    return jsonify(task=task_id, state=human.state, instance=human.instance_id)

"""The inbox's pages: the task list (filtered, sorted, paged) and a task's page.

Decision: both pages read only what the engine hands over (`engine.inbox.inbox_page`,
`engine.review.task_page`); a bad filter value is shown as a message with the rest of the list
(400), and a task someone may not see is a 404 like one that does not exist.
"""

from __future__ import annotations

from flask import current_app, render_template, request

from engine import bundles, inbox, review
from engine.errors import FieldError
from web import schema_forms
from web.access import current_actor, staff_required
from web.extensions import db
from web.inbox import bp, display, filters


def _types() -> list[str]:
    return sorted({row.bundle_key for row in bundles.live_versions(db.session)})


@bp.get("/")
@staff_required
def index():
    types = _types()
    chosen = filters.parse(request.args, types)
    page = inbox.inbox_page(db.session, current_actor(), chosen.query)
    return render_template(
        "inbox/index.html",
        page=page,
        chosen=chosen,
        types=types,
        groups=display.group_names(),
        due_labels=filters.DUE_LABELS,
        sort_labels=filters.SORT_LABELS,
        page_sizes=filters.PAGE_SIZES,
    ), (400 if chosen.errors else 200)


@bp.get("/tasks/<int:task_id>")
@staff_required
def task(task_id: int):
    settings = current_app.extensions["approval"]
    view = review.task_page(db.session, settings, task_id, current_actor())
    return draw_task(view)


def draw_task(view: review.ReviewView, values=None, errors: list[FieldError] | None = None):
    """The task page; with `values` and `errors` after a refused decision."""
    schema = view.form_schema or {}
    fields = schema_forms.fields(schema, view.form_uischema, values, errors)
    members = inbox.group_members(db.session, view.task.group_key) if view.task.group_key else []
    return render_template(
        "inbox/task.html",
        v=view,
        fields=fields,
        form_errors=schema_forms.form_errors(errors or [], schema),
        colleagues=[m for m in members if m not in (current_actor().username, view.task.applicant)],
        groups=display.group_names(),
    )

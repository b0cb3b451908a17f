"""What a reviewer's task page shows: the application, its documents, the automatic screening,
the opinions of earlier levels and the decision form.

Decision: one call gathers everything a decision needs from the rows and the instance's data as
the task sees it (the applicant's latest answers, the operators' results), so a host draws it
without knowing where the engine keeps anything. Seeing follows `may_see_instance` (anyone else
is told the task does not exist); acting is `may_act`, whose refusal is shown, not raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.exceptions import TaskNotFoundException
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import inbox, runtime
from engine.bundles import LoadedVersion
from engine.config import Settings
from engine.directory import Actor
from engine.errors import ApprovalError, NotFound
from engine.models import Document, HumanTask
from engine.permissions import may_act, may_see_instance


@dataclass(frozen=True)
class Item:
    """One answer: the field's name, its title on the form and the value (enum names applied)."""

    name: str
    label: str
    value: Any


@dataclass(frozen=True)
class DocumentView:
    id: int
    kind: str
    name: str
    content_type: str
    size: int

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def is_pdf(self) -> bool:
        return self.content_type == "application/pdf"


@dataclass(frozen=True)
class Screening:
    """The automatic pre-check as the operators left it (missing parts are None / empty)."""

    score: int | None = None
    grade: str | None = None
    reasons: list[dict] = field(default_factory=list)
    hard_hits: list[dict] = field(default_factory=list)
    bureau: dict | None = None
    note: str | None = None


@dataclass(frozen=True)
class Opinion:
    """An earlier level's decision: the task, who decided, when, and what they submitted."""

    task_name: str
    element_id: str
    decided_by: str | None
    decided_at: datetime | None
    items: list[Item]


@dataclass(frozen=True)
class ReviewView:
    task: inbox.TaskView
    status: str
    application: list[Item]
    documents: list[DocumentView]
    screening: Screening | None
    opinions: list[Opinion]
    form_schema: dict | None
    form_uischema: dict | None
    #: why the actor may not act on the task now (taken, done, segregation of duties), or None
    blocked: str | None = None

    @property
    def can_act(self) -> bool:
        return self.blocked is None


def task_page(session: Session, settings: Settings, task_id: int, actor: Actor) -> ReviewView:
    """Everything the reviewer's page of task `task_id` shows; NotFound for anyone who may not
    see its application."""
    human = session.get(HumanTask, task_id, populate_existing=True)
    if human is None:
        raise NotFound(f"no task #{task_id}")
    try:
        may_see_instance(session, human.instance_id, actor)
    except NotFound:
        raise NotFound(f"no task #{task_id}") from None
    loaded = runtime.load(session, settings, human.instance_id)
    data = _data(loaded, human)
    version = loaded.version
    return ReviewView(
        task=inbox.tasks_view(session, human),
        status=loaded.row.status,
        application=_application(session, version, human.instance_id, data),
        documents=_documents(session, human.instance_id),
        screening=screening(data),
        opinions=_opinions(session, version, human.instance_id),
        form_schema=_json(version, human.form),
        form_uischema=_json(version, human.ui_form),
        blocked=_blocked(session, human, actor),
    )


def _data(loaded: runtime.Loaded, human: HumanTask) -> dict[str, Any]:
    """The data as the task sees it; for a task no longer in the tree, the latest data."""
    try:
        task = loaded.workflow.get_task_from_id(UUID(human.task_id))
    except TaskNotFoundException:  # cancelled with its branch, or pruned
        task = loaded.workflow.last_task
    return dict(task.data) if task is not None else {}


def _blocked(session: Session, human: HumanTask, actor: Actor) -> str | None:
    try:
        may_act(session, human, actor)
    except ApprovalError as refused:
        return str(refused)
    return None


def _json(version: LoadedVersion, path: str | None) -> dict | None:
    text = version.forms.get(path) if path else None
    return json.loads(text) if text else None


def items(schema: dict | None, uischema: dict | None, values: dict[str, Any]) -> list[Item]:
    """The answers in `values` as the form labels them, in the form's order; documents (drawn
    apart) and unanswered fields are left out."""
    props = (schema or {}).get("properties", {})
    uischema = uischema or {}
    order = [n for n in uischema.get("ui:order", []) if n in props]
    order += [n for n in props if n not in order]
    return [
        Item(name, str(props[name].get("title", name)), _named(props[name], uischema, name, values))
        for name in order
        if values.get(name) is not None and not _is_documents(values[name])
    ]


def _named(prop: dict, uischema: dict, name: str, values: dict[str, Any]) -> Any:
    value = values[name]
    names = (uischema.get(name) or {}).get("ui:enumNames") or []
    choices = prop.get("enum") or []
    if value in choices and choices.index(value) < len(names):
        return names[choices.index(value)]
    return value


def _is_documents(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(v, dict) and "sha256" in v for v in value)


def _application(
    session: Session, version: LoadedVersion, instance_id: int, data: dict[str, Any]
) -> list[Item]:
    """The applicant's answers labelled by their form: that of the instance's first task
    without a group (the applicant's own)."""
    first = session.scalar(
        select(HumanTask)
        .where(HumanTask.instance_id == instance_id, HumanTask.group_key.is_(None))
        .where(HumanTask.form.is_not(None))
        .order_by(HumanTask.id)
        .limit(1)
    )
    if first is None:
        return []
    return items(_json(version, first.form), _json(version, first.ui_form), data)


def _documents(session: Session, instance_id: int) -> list[DocumentView]:
    rows = session.scalars(
        select(Document).where(Document.instance_id == instance_id).order_by(Document.id)
    )
    return [DocumentView(d.id, d.kind, d.name, d.content_type, d.size) for d in rows]


def screening(data: dict[str, Any]) -> Screening | None:
    """The pre-check's results in the data: `scorecard` (screening.scorecard), `hard_hits` (the
    hard-rule table), `bureau` (screening.credit_bureau); None before any of them ran."""
    card = data.get("scorecard") if isinstance(data.get("scorecard"), dict) else {}
    hits = data.get("hard_hits") if isinstance(data.get("hard_hits"), list) else []
    bureau = data.get("bureau") if isinstance(data.get("bureau"), dict) else None
    if not card and not hits and bureau is None:
        return None
    return Screening(
        score=card.get("score"),
        grade=card.get("grade"),
        reasons=[r for r in card.get("reasons") or [] if isinstance(r, dict)],
        hard_hits=[h for h in hits if isinstance(h, dict)],
        bureau=bureau,
        note=data.get("route_note") if data.get("route_flag") else None,
    )


def _opinions(session: Session, version: LoadedVersion, instance_id: int) -> list[Opinion]:
    """Every completed staff task of the application, in the order they were decided."""
    done = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == instance_id, HumanTask.state == "completed")
        .where(HumanTask.group_key.is_not(None))
        .order_by(HumanTask.completed_at, HumanTask.id)
    )
    return [
        Opinion(
            t.name,
            t.element_id,
            t.completed_by,
            t.completed_at,
            items(_json(version, t.form), _json(version, t.ui_form), t.submitted or {}),
        )
        for t in done
    ]

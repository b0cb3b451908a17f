"""The applicant's side of applications: what can be applied for, submit, list mine, withdraw,
and the applicant's own open tasks (supply missing information, sign the contract).

Decisions: (1) the application form of a type is the form of the first user task the diagram
reaches from its start event, if that task is the applicant's own — found in the deployed
diagram, so a new bundle needs no code; (2) submitting starts the instance and completes that
task in one transaction (the engine validates the data against the same form), and documents
named in the data are then tied to the application; (3) an applicant may withdraw only while no
reviewer has acted on or claimed any of its tasks.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, bundles, clock, documents, forms, runtime, second_factor
from engine.config import Settings
from engine.conflicts import guarded
from engine.directory import Actor
from engine.errors import Conflict, NotFound
from engine.models import HumanTask, ProcessInstance, ServiceCall, User
from engine.task_checks import TaskMeta

OPEN = ("ready", "claimed")


@dataclass(frozen=True)
class FormSpec:
    """A JSON Schema form with its uiSchema, as a host draws it."""

    path: str
    schema: dict[str, Any]
    uischema: dict[str, Any]
    #: The schema as deployed (what `forms.validate` checks against).
    text: str | None = None

    @property
    def title(self) -> str:
        return str(self.schema.get("title") or "")


@dataclass(frozen=True)
class ApplicationType:
    key: str
    version: int
    title: str


def _form(version: bundles.LoadedVersion, path: str | None, ui_path: str | None) -> FormSpec:
    text = version.forms.get(path) if path else None
    schema = json.loads(text) if text else {}
    uischema = json.loads(version.forms[ui_path]) if ui_path in version.forms else {}
    return FormSpec(path or "", schema, uischema, text)


def first_task(version: bundles.LoadedVersion) -> TaskMeta | None:
    """The first user task reached from the start event, when it is the applicant's own."""
    spec = version.specs[version.main_process_id]
    queue, seen = deque([spec.start]), set()
    while queue:
        task_spec = queue.popleft()
        if task_spec.name in seen:
            continue
        seen.add(task_spec.name)
        meta = version.tasks.get(task_spec.name)
        if meta is not None:
            return meta if meta.group_key is None and meta.form else None
        queue.extend(task_spec.outputs)
    return None


def application_form(session: Session, key: str) -> FormSpec:
    """The form an applicant fills to apply for `key` (its live version)."""
    version = bundles.load_live(session, key)
    meta = first_task(version)
    if meta is None:
        raise NotFound(f"`{key}` cannot be applied for: it does not start with an applicant form")
    return _form(version, meta.form, meta.ui_form)


def types(session: Session) -> list[ApplicationType]:
    """What an applicant may apply for now: every live bundle that starts with their form."""
    found = []
    for row in bundles.live_versions(session):
        version = bundles.load(session, uid=row.uid)
        meta = first_task(version)
        if meta is not None:
            title = _form(version, meta.form, meta.ui_form).title or row.bundle_key
            found.append(ApplicationType(row.bundle_key, row.version, title))
    return found


def document_shas(data: dict[str, Any]) -> list[str]:
    """The SHA-256 of every document the data names (arrays of {…, sha256})."""
    return [
        item["sha256"]
        for value in data.values()
        if isinstance(value, list)
        for item in value
        if isinstance(item, dict) and isinstance(item.get("sha256"), str)
    ]


@guarded
def submit(
    session: Session,
    settings: Settings,
    key: str,
    data: dict[str, Any],
    actor: Actor,
    *,
    defer: bool,
) -> ProcessInstance:
    """Start an application of `key` with the applicant's form data; its number is issued here.

    The start runs at once up to the applicant's form (no service runs before it); completing
    the form is what hands the application to the automatic pre-check (a worker with `defer`).
    """
    row = runtime.start(session, settings, key, {}, actor)
    meta = first_task(bundles.load(session, uid=row.version_uid))
    human = session.scalar(
        select(HumanTask).where(
            HumanTask.instance_id == row.id,
            HumanTask.element_id == (meta.element_id if meta else None),
            HumanTask.state == "ready",
        )
    )
    if human is None:
        raise NotFound(f"`{key}` cannot be applied for: it does not start with an applicant form")
    runtime.complete_task(session, settings, human.id, actor, data, defer=defer)
    documents.attach(session, row.id, document_shas(human.submitted or {}), actor.username)
    return row


@dataclass(frozen=True)
class ApplicationView:
    """One of an applicant's applications as their list shows it."""

    id: int
    reference: str
    bundle_key: str
    title: str
    submitted_at: datetime
    #: processing, waiting, completed, withdrawn, error
    status: str
    steps: list[str] = field(default_factory=list)
    result: str | None = None
    #: (task id, name) of the applicant's own open tasks
    my_tasks: list[tuple[int, str]] = field(default_factory=list)
    withdrawable: bool = False


@dataclass(frozen=True)
class Page:
    items: list[ApplicationView]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


STATUS = {"running": "processing", "cancelled": "withdrawn"}
ACTIVE = ("running", "waiting", "error")
REVIEW_STARTED = "a reviewer has already started on this application; it can no longer be withdrawn"
NOT_ACTIVE_COMPLETED = "this application is already completed; it cannot be withdrawn"
NOT_ACTIVE_WITHDRAWN = "this application is already withdrawn"


def mine(session: Session, username: str, *, page: int = 1, per_page: int = 20) -> Page:
    """`username`'s applications, newest first."""
    query = select(ProcessInstance).where(
        ProcessInstance.started_by == username, ProcessInstance.reference.is_not(None)
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ProcessInstance.created_at.desc(), ProcessInstance.id.desc())
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    return Page([view(session, row) for row in rows], total, max(page, 1), per_page)


def my_application(session: Session, instance_id: int, actor: Actor) -> ApplicationView:
    """One of `actor`'s own applications; anybody else's does not exist for them."""
    row = session.get(ProcessInstance, instance_id)
    if row is None or row.started_by != actor.username or row.reference is None:
        raise NotFound(f"no application #{instance_id}")
    return view(session, row)


def view(session: Session, row: ProcessInstance) -> ApplicationView:
    version = bundles.load(session, uid=row.version_uid)
    meta = first_task(version)
    title = _form(version, meta.form, meta.ui_form).title if meta else ""
    tasks = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == row.id, HumanTask.state.in_(OPEN))
        .order_by(HumanTask.id)
    ).all()
    return ApplicationView(
        id=row.id,
        reference=row.reference or "",
        bundle_key=row.bundle_key,
        title=title or row.bundle_key,
        submitted_at=row.created_at,
        status=STATUS.get(row.status, row.status),
        steps=[t.name for t in tasks],
        result=_result(session, version, row) if row.status == "completed" else None,
        my_tasks=[(t.id, t.name) for t in tasks if t.group_key is None],
        withdrawable=row.status in ACTIVE and not _reviewed(session, row),
    )


def _result(session: Session, version: bundles.LoadedVersion, row: ProcessInstance) -> str:
    """The name of the end event the application reached (e.g. 已签约 Contract signed)."""
    ends = [
        e.data.get("end")
        for e in audit.events_for_instance(session, row.id)
        if e.kind == "completed"
    ]
    end = ends[-1] if ends else None
    spec = version.specs[version.main_process_id].task_specs.get(end) if end else None
    return getattr(spec, "bpmn_name", None) or end or ""


def _reviewed(session: Session, row: ProcessInstance) -> bool:
    """Whether anybody but the applicant has acted on, or taken, a task of the application."""
    acted = (HumanTask.completed_by.is_not(None)) & (HumanTask.completed_by != row.started_by)
    taken = (HumanTask.state == "claimed") & HumanTask.group_key.is_not(None)
    found = session.scalar(
        select(HumanTask.id).where(HumanTask.instance_id == row.id, acted | taken).limit(1)
    )
    return found is not None


@guarded
def withdraw(
    session: Session, settings: Settings, instance_id: int, actor: Actor
) -> ProcessInstance:
    """The applicant takes their application back: it stops, its open tasks and calls close."""
    row = session.get(ProcessInstance, instance_id, populate_existing=True)
    if row is None or row.started_by != actor.username:
        raise NotFound(f"no application #{instance_id}")
    if row.status not in ACTIVE:
        raise Conflict(NOT_ACTIVE_WITHDRAWN if row.status == "cancelled" else NOT_ACTIVE_COMPLETED)
    if _reviewed(session, row):
        raise Conflict(REVIEW_STARTED)
    now = clock.now()
    for task in session.scalars(
        select(HumanTask).where(HumanTask.instance_id == row.id, HumanTask.state.in_(OPEN))
    ):
        task.state = "cancelled"
    for call in session.scalars(
        select(ServiceCall).where(
            ServiceCall.instance_id == row.id, ServiceCall.status.in_(("pending", "waiting"))
        )
    ):
        call.status, call.finished_at = "cancelled", now
    row.status, row.completed_at, row.next_due_at = "cancelled", now, None
    runtime.record(session, settings, row, "withdraw", actor.username, {"reference": row.reference})
    return row


# --- the applicant's own open tasks ---------------------------------------------------------

#: Forms whose completion is a signature (`sign-contract-schema.json`): a second factor proves it.
SIGN_FORM = re.compile(r"(^|/)sign-[^/]*-schema\.json$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class MyTask:
    id: int
    instance_id: int
    reference: str
    name: str
    form: FormSpec
    #: The application's current data for the fields this form has (prefilled).
    values: dict[str, Any]
    #: The diagram's instructions for the applicant, with `{{ name }}` filled from the data.
    instructions: str
    needs_second_factor: bool


def _my_open_task(session: Session, instance_id: int, task_id: int, actor: Actor) -> HumanTask:
    human = session.get(HumanTask, task_id, populate_existing=True)
    row = session.get(ProcessInstance, instance_id)
    mine_ = (
        human is not None
        and row is not None
        and human.instance_id == instance_id
        and human.group_key is None
        and actor.username in (human.assignee, row.started_by)
    )
    if not mine_:
        raise NotFound(f"no task #{task_id}")
    if human.state not in OPEN:
        raise Conflict(f"this task is already {human.state}")
    return human


def fill_in(text: str, data: dict[str, Any]) -> str:
    """`{{ name }}` placeholders replaced by the data's values (nothing else is evaluated)."""
    return _PLACEHOLDER.sub(lambda m: str(data.get(m.group(1), "")), text or "")


def my_task(
    session: Session, settings: Settings, instance_id: int, task_id: int, actor: Actor
) -> MyTask:
    """An open task of the applicant's, with its form prefilled from the application."""
    human = _my_open_task(session, instance_id, task_id, actor)
    loaded = runtime.load(session, settings, instance_id)
    task = loaded.workflow.get_task_from_id(UUID(human.task_id))
    data = dict(task.data) if task is not None else {}
    form = _form(loaded.version, human.form, human.ui_form)
    fields = form.schema.get("properties", {})
    extensions = getattr(task.task_spec, "extensions", {}) if task is not None else {}
    return MyTask(
        id=human.id,
        instance_id=instance_id,
        reference=loaded.row.reference or "",
        name=human.name,
        form=form,
        values={k: v for k, v in data.items() if k in fields},
        instructions=fill_in(extensions.get("instructionsForEndUser", ""), data),
        needs_second_factor=bool(human.form and SIGN_FORM.search(human.form)),
    )


def complete_my_task(
    session: Session,
    settings: Settings,
    instance_id: int,
    task_id: int,
    actor: Actor,
    data: dict[str, Any],
    *,
    defer: bool,
    code: str | None = None,
) -> HumanTask:
    """Complete the applicant's task (the engine checks the data against its form); documents
    the data newly names become the application's. A signature also needs the applicant's
    second-factor `code`, checked only once the form is right (a failed check counts an
    attempt, so the caller commits even then)."""
    human = _my_open_task(session, instance_id, task_id, actor)
    if human.form and SIGN_FORM.search(human.form):
        version = runtime.load(session, settings, instance_id).version
        forms.validate(version.forms.get(human.form), data)
        user = session.scalar(select(User).where(User.username == actor.username))
        second_factor.check(session, settings, user, code or "", "sign")
    human = runtime.complete_task(session, settings, human.id, actor, data, defer=defer)
    if human.state == "completed":
        documents.attach(session, instance_id, document_shas(data), actor.username)
    return human

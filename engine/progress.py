"""Where an application stands, for the person who asked: its state, current steps, timeline,
the diagram with what is done and what is open, and the result with opinions and reasons.

Decision: everything is read from rows the engine already keeps (the instance, its task and
service-call rows, its audit stream, its bundle version) plus, once, its own process data for
the result; no SpiffWorkflow object leaves this module, only the frozen dataclasses below.
Access is checked here (`permissions.may_see_instance`), and an application someone may not
see is as unknown as a number that does not exist, so numbers cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, runtime
from engine.config import Settings
from engine.directory import Actor
from engine.errors import NotFound
from engine.models import BundleFile, Group, HumanTask, ProcessInstance, ServiceCall, User
from engine.permissions import may_see_instance

#: The instance status → the state a person reads (`running` means a worker has it now).
STATES = {
    "running": "processing",
    "waiting": "waiting",
    "completed": "completed",
    "cancelled": "withdrawn",
    "error": "error",
}
OPEN_TASKS = ("ready", "claimed")
OPEN_CALLS = ("pending", "waiting")


@dataclass(frozen=True)
class Step:
    """Something the application waits for now: a person's task or an automatic step."""

    element_id: str
    name: str
    group_key: str | None
    #: The group's name in the reader's language (the key if the group is unknown).
    group_name: str | None
    assignee: str | None
    due_at: datetime | None
    #: The human task's id (None for an automatic step), e.g. for the applicant's own task.
    task_id: int | None = None
    #: The applicant's own task (supply information, sign the contract).
    applicants: bool = False


@dataclass(frozen=True)
class Event:
    """One line of the timeline: who did what, when, and the opinion they gave."""

    at: datetime
    actor: str
    actor_name: str
    kind: str
    element_id: str | None
    step: str | None
    decision: str | None = None
    opinion: str | None = None


@dataclass(frozen=True)
class Result:
    """How a finished (or decided) application ended, and why."""

    end_id: str | None
    end_name: str | None
    declined: bool
    declined_by: str | None
    reasons: tuple[str, ...]
    suggestions: tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    instance_id: int
    reference: str | None
    bundle_key: str
    started_by: str
    created_at: datetime
    state: str
    current: tuple[Step, ...]
    timeline: tuple[Event, ...]
    #: Every decision a level gave, oldest first (the `complete` events that carry one).
    opinions: tuple[Event, ...]
    done_ids: tuple[str, ...]
    current_ids: tuple[str, ...]
    result: Result | None


def find(session: Session, reference: str, actor: Actor) -> ProcessInstance:
    """The application numbered `reference` if `actor` may see it; NotFound otherwise."""
    instance_id = session.scalar(
        select(ProcessInstance.id).where(ProcessInstance.reference == reference.strip().upper())
    )
    unknown = NotFound(f"no application {reference.strip()}")
    if instance_id is None:
        raise unknown
    try:
        return may_see_instance(session, instance_id, actor)
    except NotFound:
        raise unknown from None  # the same words as an unknown number: nothing to probe


def of(
    session: Session, settings: Settings, reference: str, actor: Actor, locale: str = "zh"
) -> Progress:
    """The progress of application `reference` as `actor` may see it, texts in `locale`."""
    row = find(session, reference, actor)
    loaded = runtime.load(session, settings, row.id)
    names = _element_names(loaded.version.specs)
    current = _current_steps(session, row, names, locale)
    current_ids = tuple(dict.fromkeys(step.element_id for step in current))
    timeline = _timeline(session, row.id, names)
    return Progress(
        instance_id=row.id,
        reference=row.reference,
        bundle_key=row.bundle_key,
        started_by=row.started_by,
        created_at=row.created_at,
        state=STATES.get(row.status, row.status),
        current=current,
        timeline=timeline,
        opinions=tuple(e for e in timeline if e.decision is not None),
        done_ids=tuple(i for i in _done_ids(loaded.workflow) if i not in current_ids),
        current_ids=current_ids,
        result=_result(row, timeline, names, _latest_data(loaded.workflow), locale),
    )


def diagram(session: Session, reference: str, actor: Actor) -> str:
    """The BPMN XML of the version the application runs on (the file with its main process)."""
    row = find(session, reference, actor)
    files = session.execute(
        select(BundleFile.path, BundleFile.content)
        .where(BundleFile.bundle_version_id == row.bundle_version_id, BundleFile.kind == "bpmn")
        .order_by(BundleFile.path)
    ).all()
    marker = f'id="{row.process_id}"'
    for _, content in files:
        if marker in content:
            return content
    if not files:
        raise NotFound(f"application {reference} has no diagram")
    return files[0].content


# --- current steps and marking ------------------------------------------------------------------


def _current_steps(
    session: Session, row: ProcessInstance, names: dict[str, str], locale: str
) -> tuple[Step, ...]:
    tasks = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == row.id, HumanTask.state.in_(OPEN_TASKS))
        .order_by(HumanTask.id)
    )
    groups = _group_names(session, locale)
    steps = [
        Step(
            t.element_id,
            t.name,
            t.group_key,
            groups.get(t.group_key, t.group_key) if t.group_key else None,
            t.assignee,
            t.due_at,
            t.id,
            t.group_key is None and t.assignee == row.started_by,
        )
        for t in tasks
    ]
    calls = session.execute(
        select(ServiceCall.element_id)
        .where(ServiceCall.instance_id == row.id, ServiceCall.status.in_(OPEN_CALLS))
        .order_by(ServiceCall.id)
    )
    steps += [Step(e, names.get(e, e), None, None, None, None) for e in calls.scalars()]
    return tuple(steps)


def _group_names(session: Session, locale: str) -> dict[str, str]:
    rows = session.execute(select(Group.key, Group.name_zh, Group.name_en))
    return {key: (en if locale == "en" else zh) or key for key, zh, en in rows}


def _done_ids(workflow) -> tuple[str, ...]:
    """BPMN ids of every element that ran to completion (engine-internal tasks have none)."""
    done = workflow.get_tasks(state=TaskState.COMPLETED)
    return tuple(dict.fromkeys(t.task_spec.bpmn_id for t in done if t.task_spec.bpmn_id))


def _element_names(specs: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for spec in specs.values():
        for task_spec in spec.task_specs.values():
            if task_spec.bpmn_id:
                names[task_spec.bpmn_id] = task_spec.bpmn_name or task_spec.bpmn_id
    return names


# --- the timeline -------------------------------------------------------------------------------


def _timeline(session: Session, instance_id: int, names: dict[str, str]) -> tuple[Event, ...]:
    events = audit.events_for_instance(session, instance_id)
    people = _display_names(session, {e.actor for e in events})
    return tuple(_event(e, people, names) for e in events)


def _event(event, people: dict[str, str], names: dict[str, str]) -> Event:
    data = event.data or {}
    element_id = data.get("task") or data.get("end")
    decision, opinion = _decision(data.get("data")) if event.kind == "complete" else (None, None)
    return Event(
        at=event.at,
        actor=event.actor,
        actor_name=people.get(event.actor, event.actor),
        kind=event.kind,
        element_id=element_id,
        step=data.get("name") or names.get(element_id or "", element_id),
        decision=decision,
        opinion=opinion,
    )


def _decision(submitted: Any) -> tuple[str | None, str | None]:
    """A level's `<level>_decision` and `<level>_opinion` (or plain `decision`, `opinion`)."""
    if not isinstance(submitted, dict):
        return None, None
    for key, value in submitted.items():
        if key == "decision" or key.endswith("_decision"):
            prefix = key.removesuffix("decision")
            opinion = submitted.get(f"{prefix}opinion") or submitted.get("opinion")
            return _text(value), _text(opinion)
    return None, None


def _text(value: Any) -> str | None:
    return (str(value).strip() or None) if value is not None else None


def _display_names(session: Session, usernames: set[str]) -> dict[str, str]:
    rows = session.execute(
        select(User.username, User.display_name).where(User.username.in_(sorted(usernames)))
    )
    return {username: name or username for username, name in rows}


# --- the result ---------------------------------------------------------------------------------


def _latest_data(workflow) -> dict[str, Any]:
    """The process data as the latest step left it (the last task that ran or is ready)."""
    live = TaskState.READY | TaskState.STARTED | TaskState.COMPLETED
    tasks = workflow.get_tasks(state=live)
    if not tasks:
        return {}
    return dict(max(tasks, key=lambda t: t.last_state_change).data)


def _result(row, timeline, names, data: dict[str, Any], locale: str) -> Result | None:
    """The outcome once the application completed, or once it was declined (reasons known)."""
    reasons = _localised(data, "decline_reasons", locale)
    if row.status != "completed" and not reasons:
        return None
    ends = [e.element_id for e in timeline if e.kind == "completed"]
    end_id = ends[-1] if ends else None
    return Result(
        end_id=end_id,
        end_name=names.get(end_id or "", end_id),
        declined=bool(reasons),
        declined_by=_text(data.get("declined_by")) if reasons else None,
        reasons=reasons,
        suggestions=_localised(data, "decline_suggestions", locale),
    )


def _localised(data: dict[str, Any], name: str, locale: str) -> tuple[str, ...]:
    """`<name>_<locale>` (falling back to Chinese, then English) as a tuple of texts."""
    for code in (locale, "zh", "en"):
        value = data.get(f"{name}_{code}")
        if isinstance(value, list) and value:
            return tuple(str(item) for item in value)
    return ()

"""The reviewers' inbox: the open tasks a person may work on, and claiming or releasing them.

Decision: the inbox is the `human_tasks` table alone (indexed by state, group and assignee);
it never reads engine state, so it stays fast however large instances grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import clock, runtime
from engine.config import Settings
from engine.directory import Actor
from engine.errors import Forbidden, NotFound, TaskConflict
from engine.models import HumanTask, ProcessInstance


@dataclass(frozen=True)
class TaskView:
    """A task as a host shows it; no engine object leaves the engine."""

    id: int
    instance_id: int
    bundle_key: str
    element_id: str
    name: str
    group_key: str | None
    assignee: str | None
    state: str
    form: str | None
    ui_form: str | None
    created_at: datetime
    due_at: datetime | None


def _view(task: HumanTask, bundle_key: str) -> TaskView:
    return TaskView(
        task.id,
        task.instance_id,
        bundle_key,
        task.element_id,
        task.name,
        task.group_key,
        task.assignee,
        task.state,
        task.form,
        task.ui_form,
        task.created_at,
        task.due_at,
    )


def open_tasks(
    session: Session, actor: Actor, *, limit: int = 50, offset: int = 0
) -> list[TaskView]:
    """Open tasks of the actor's groups (unclaimed) and those assigned to them, oldest first."""
    query = (
        select(HumanTask, ProcessInstance.bundle_key)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.state.in_(("ready", "claimed")))
        .where(
            or_(
                HumanTask.assignee == actor.username,
                (HumanTask.assignee.is_(None)) & HumanTask.group_key.in_(sorted(actor.groups)),
            )
        )
        .order_by(HumanTask.created_at, HumanTask.id)
        .limit(limit)
        .offset(offset)
    )
    return [_view(task, key) for task, key in session.execute(query)]


def tasks_of_instance(session: Session, instance_id: int) -> list[TaskView]:
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound(f"no application process #{instance_id}")
    tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.id)
    )
    return [_view(t, row.bundle_key) for t in tasks]


def _get(session: Session, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id, populate_existing=True)
    if task is None:
        raise NotFound(f"no task #{task_id}")
    return task


@runtime.guarded
def claim(session: Session, settings: Settings, task_id: int, actor: Actor) -> TaskView:
    """Take a group task so nobody else works on it."""
    task = _get(session, task_id)
    runtime.may_act(session, task, actor)
    if task.assignee == actor.username:
        return tasks_view(session, task)
    task.state, task.assignee, task.claimed_at = "claimed", actor.username, clock.now()
    instance = session.get(ProcessInstance, task.instance_id)
    runtime.record(session, settings, instance, "claim", actor.username, {"task": task.element_id})
    return tasks_view(session, task)


@runtime.guarded
def release(session: Session, settings: Settings, task_id: int, actor: Actor) -> TaskView:
    """Give a claimed task back to its group."""
    task = _get(session, task_id)
    if task.state != "claimed":
        raise TaskConflict(f"this task is {task.state}, not claimed")
    if task.assignee != actor.username:
        raise Forbidden("only the person who claimed a task can release it")
    if task.group_key is None:
        raise Forbidden("this task is yours alone; it cannot be released to a group")
    task.state, task.assignee, task.claimed_at = "ready", None, None
    instance = session.get(ProcessInstance, task.instance_id)
    runtime.record(
        session, settings, instance, "release", actor.username, {"task": task.element_id}
    )
    return tasks_view(session, task)


def tasks_view(session: Session, task: HumanTask) -> TaskView:
    key = session.scalar(
        select(ProcessInstance.bundle_key).where(ProcessInstance.id == task.instance_id)
    )
    return _view(task, key)

"""Who may act on a human task: the one rule the inbox and task completion both apply.

Decision: a task is open, and yours or your group's and not taken by someone else; and, for
segregation of duties, nobody reviews their own application or decides two levels of one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.directory import Actor
from engine.errors import Forbidden, NotFound, TaskConflict
from engine.models import HumanTask, ProcessInstance


def may_act(
    session: Session, human: HumanTask, actor: Actor, *, tasks: list[HumanTask] | None = None
) -> None:
    """The one rule for acting on a task: open, yours or your group's and not someone else's,
    and (segregation of duties) never a second level of, or a review of, your own application.

    `tasks`: every human task of the instance, when the caller read them in this transaction.
    """
    must_see_task(session, human, actor)
    _may_take(human, actor)
    if human.group_key is not None:
        segregate(session, human, actor, tasks)


def segregate(
    session: Session, human: HumanTask, actor: Actor, tasks: list[HumanTask] | None = None
) -> None:
    if session.get(ProcessInstance, human.instance_id).started_by == actor.username:
        raise Forbidden("you cannot review or approve your own application")
    if tasks is None:
        other_level = session.scalar(_other_levels(human, actor).limit(1))
    else:
        other_level = next((t.name for t in tasks if _other_level(t, human, actor)), None)
    if other_level is not None:
        raise Forbidden(
            f"you already decided “{other_level}” of this application; another person must "
            "decide this level (segregation of duties)"
        )


def _other_levels(human: HumanTask, actor: Actor):
    return select(HumanTask.name).where(
        HumanTask.instance_id == human.instance_id,
        HumanTask.completed_by == actor.username,
        HumanTask.group_key.is_not(None),
        HumanTask.element_id != human.element_id,
    )


def _other_level(task: HumanTask, human: HumanTask, actor: Actor) -> bool:
    """The query of `_other_levels`, on a row already read."""
    same_instance = task.instance_id == human.instance_id
    by_actor = task.completed_by == actor.username and task.group_key is not None
    return same_instance and by_actor and task.element_id != human.element_id


def _may_take(human: HumanTask, actor: Actor) -> None:
    if human.state not in ("ready", "claimed"):
        raise TaskConflict(f"this task is already {human.state}")
    if human.assignee is not None and human.assignee != actor.username:
        if human.group_key is None:  # an applicant's own task: not a race, simply not yours
            raise Forbidden("this task belongs to another person")
        raise TaskConflict(f"this task is taken by {human.assignee}")
    if human.assignee is None and not actor.in_group(human.group_key):
        raise Forbidden("this task belongs to a group you are not in")


def must_see_task(session: Session, human: HumanTask, actor: Actor) -> None:
    """NotFound, worded as for an unknown id, unless `actor` may see the task's application:
    whoever may not see it must not learn from a refusal that the task exists or who holds it."""
    if human.assignee == actor.username or actor.in_group(human.group_key):
        return  # the common case needs no query
    try:
        may_see_instance(session, human.instance_id, actor)
    except NotFound:
        raise NotFound(f"no task #{human.id}") from None


def may_see_instance(session: Session, instance_id: int, actor: Actor) -> ProcessInstance:
    """The application if `actor` may read it (its data, documents, timeline); else NotFound.

    The applicant sees their own; staff see an application that one of their groups' tasks
    touches (open or done), one assigned to them, or one they acted on. Anyone else is told it
    does not exist, so application ids cannot be probed.
    """
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound(f"no application #{instance_id}")
    if row.started_by == actor.username:
        return row
    touches = (
        HumanTask.group_key.in_(sorted(actor.groups))
        | (HumanTask.assignee == actor.username)
        | (HumanTask.completed_by == actor.username)
    )
    seen = session.scalar(
        select(HumanTask.id).where(HumanTask.instance_id == instance_id, touches).limit(1)
    )
    if seen is None:
        raise NotFound(f"no application #{instance_id}")
    return row

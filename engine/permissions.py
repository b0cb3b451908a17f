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


def may_act(session: Session, human: HumanTask, actor: Actor) -> None:
    """The one rule for acting on a task: open, yours or your group's and not someone else's,
    and (segregation of duties) never a second level of, or a review of, your own application."""
    _may_take(human, actor)
    if human.group_key is not None:
        segregate(session, human, actor)


def segregate(session: Session, human: HumanTask, actor: Actor) -> None:
    if session.get(ProcessInstance, human.instance_id).started_by == actor.username:
        raise Forbidden("you cannot review or approve your own application")
    other_level = session.scalar(
        select(HumanTask.name)
        .where(
            HumanTask.instance_id == human.instance_id,
            HumanTask.completed_by == actor.username,
            HumanTask.group_key.is_not(None),
            HumanTask.element_id != human.element_id,
        )
        .limit(1)
    )
    if other_level is not None:
        raise Forbidden(
            f"you already decided “{other_level}” of this application; another person must "
            "decide this level (segregation of duties)"
        )


def _may_take(human: HumanTask, actor: Actor) -> None:
    if human.state not in ("ready", "claimed"):
        raise TaskConflict(f"this task is already {human.state}")
    if human.assignee is not None and human.assignee != actor.username:
        if human.group_key is None:  # an applicant's own task: not a race, simply not yours
            raise Forbidden("this task belongs to another person")
        raise TaskConflict(f"this task is taken by {human.assignee}")
    if human.assignee is None and not actor.in_group(human.group_key):
        raise Forbidden("this task belongs to a group you are not in")


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

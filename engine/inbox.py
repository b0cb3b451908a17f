"""The reviewers' inbox: the open tasks a person may work on; claiming, releasing, transferring.

Decision: the inbox is the `human_tasks` table joined to the instance row's inbox columns
(bundle, reference, applicant, amount, risk grade: copied there by `instance_rows`), filtered and
sorted in SQL on indexed columns; it never reads engine state, so it stays fast however large
instances grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from engine import clock, directory, permissions, runtime
from engine.config import Settings
from engine.directory import Actor
from engine.errors import FieldError, Forbidden, Invalid, NotFound, TaskConflict
from engine.identifiers import CHINA
from engine.models import Group, HumanTask, Membership, ProcessInstance, User
from engine.permissions import may_act

OPEN = ("ready", "claimed")
DUE_STATES = ("overdue", "today", "none")
SORTS = ("created", "due", "amount")
MAX_PAGE_SIZE = 100


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
    reference: str | None = None
    amount: Decimal | None = None
    risk_grade: str | None = None
    applicant: str | None = None

    def overdue(self, now: datetime | None = None) -> bool:
        return self.due_at is not None and self.due_at < (now or clock.now())


@dataclass(frozen=True)
class InboxQuery:
    """What a reviewer asks the inbox for: filters, order and page (all optional)."""

    bundle_key: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    risk_grade: str | None = None
    due: str | None = None  # one of DUE_STATES
    sort: str = "created"  # one of SORTS
    descending: bool = False
    page: int = 1
    page_size: int = 20

    def check(self) -> None:
        """Invalid (naming the filter) for a value the inbox cannot use."""
        problems = [FieldError(name, message) for name, message in _problems(self)]
        if problems:
            raise Invalid(problems, "the inbox filter is invalid")


def _problems(query: InboxQuery):
    if query.due not in (None, *DUE_STATES):
        yield "due", f"should be one of {', '.join(DUE_STATES)}"
    if query.sort not in SORTS:
        yield "sort", f"should be one of {', '.join(SORTS)}"
    if query.page < 1:
        yield "page", "should be 1 or more"
    if not 1 <= query.page_size <= MAX_PAGE_SIZE:
        yield "page_size", f"should be between 1 and {MAX_PAGE_SIZE}"
    low, high = query.min_amount, query.max_amount
    if low is not None and high is not None and low > high:
        yield "max_amount", "should not be below the minimum amount"


@dataclass(frozen=True)
class InboxPage:
    tasks: list[TaskView]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


_COLUMNS = (
    ProcessInstance.bundle_key,
    ProcessInstance.reference,
    ProcessInstance.amount,
    ProcessInstance.risk_grade,
    ProcessInstance.started_by,
)


def _view(task: HumanTask, key: str, reference=None, amount=None, grade=None, by=None) -> TaskView:
    return TaskView(
        id=task.id,
        instance_id=task.instance_id,
        bundle_key=key,
        element_id=task.element_id,
        name=task.name,
        group_key=task.group_key,
        assignee=task.assignee,
        state=task.state,
        form=task.form,
        ui_form=task.ui_form,
        created_at=task.created_at,
        due_at=task.due_at,
        reference=reference,
        amount=amount,
        risk_grade=grade,
        applicant=by,
    )


def _mine(actor: Actor) -> ColumnElement[bool]:
    """The actor's own open tasks and their groups' unclaimed ones.

    Each side of the OR names the state itself, so SQLite answers each from its own index
    (`ix_human_tasks_inbox`, `ix_human_tasks_assignee`) instead of scanning every open task;
    an unclaimed group task is always `ready` (claiming sets the assignee and the state).
    """
    return or_(
        and_(
            HumanTask.state == "ready",
            HumanTask.group_key.in_(sorted(actor.groups)),
            HumanTask.assignee.is_(None),
        ),
        and_(HumanTask.assignee == actor.username, HumanTask.state.in_(OPEN)),
    )


def _instance_filters(query: InboxQuery) -> list[ColumnElement[bool]]:
    found = []
    if query.bundle_key:
        found.append(ProcessInstance.bundle_key == query.bundle_key)
    if query.risk_grade:
        found.append(ProcessInstance.risk_grade == query.risk_grade)
    if query.min_amount is not None:
        found.append(ProcessInstance.amount >= query.min_amount)
    if query.max_amount is not None:
        found.append(ProcessInstance.amount <= query.max_amount)
    return found


def _due_filter(due: str | None) -> list[ColumnElement[bool]]:
    now = clock.now()
    # Compared through coalesce() so SQLite keeps seeking the inbox indexes: a bare due_at range
    # tempts it into `ix_human_tasks_due`, which walks every group's open tasks.
    due_at = func.coalesce(HumanTask.due_at, HumanTask.due_at)
    if due == "overdue":
        return [due_at < now]
    if due == "none":
        return [HumanTask.due_at.is_(None)]
    if due == "today":  # the bank's day, China time
        start = datetime.combine(now.astimezone(CHINA).date(), datetime.min.time(), CHINA)
        return [due_at >= start, due_at < start + timedelta(days=1)]
    return []


def _order(query: InboxQuery) -> list:
    column = {
        "created": HumanTask.created_at,
        "due": HumanTask.due_at,
        "amount": ProcessInstance.amount,
    }[query.sort]
    ordered = column.desc() if query.descending else column.asc()
    tie = HumanTask.id.desc() if query.descending else HumanTask.id
    if query.sort == "created":  # never blank
        return [ordered, tie]
    # blanks (no due time, no amount) last in either direction, on every database
    return [column.is_(None), ordered, tie]


def _matching(actor: Actor, query: InboxQuery):
    """The ids of the matching tasks; the instance row is joined only when a filter or the
    order needs it, so the plain inbox is read from the task indexes alone."""
    ids = select(HumanTask.id).where(_mine(actor), *_due_filter(query.due))
    on_instance = _instance_filters(query)
    if on_instance or query.sort == "amount":
        ids = ids.join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
    return ids.where(*on_instance)


def _page(session: Session, actor: Actor, query: InboxQuery, limit: int, offset: int):
    """Order and cut the ids first, then read the few rows of the page with their instance."""
    ids = list(
        session.scalars(
            _matching(actor, query).order_by(*_order(query)).limit(limit).offset(offset)
        )
    )
    if not ids:
        return []
    rows = session.execute(
        select(HumanTask, *_COLUMNS)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.id.in_(ids))
    )
    found = {row[0].id: _view(*row) for row in rows}
    return [found[i] for i in ids if i in found]


def inbox_page(session: Session, actor: Actor, query: InboxQuery) -> InboxPage:
    """One page of the actor's open tasks matching `query`, and how many match in all."""
    query.check()
    total = session.scalar(select(func.count()).select_from(_matching(actor, query).subquery()))
    offset = (query.page - 1) * query.page_size
    tasks = _page(session, actor, query, query.page_size, offset)
    return InboxPage(tasks, total or 0, query.page, query.page_size)


def open_tasks(
    session: Session,
    actor: Actor,
    *,
    limit: int = 50,
    offset: int = 0,
    query: InboxQuery | None = None,
) -> list[TaskView]:
    """Open tasks of the actor's groups (unclaimed) and those assigned to them, oldest first
    (or as `query` filters and sorts them)."""
    return _page(session, actor, query or InboxQuery(), limit, offset)


def next_task(session: Session, actor: Actor, query: InboxQuery | None = None) -> TaskView | None:
    """The first task of the actor's inbox (in the order they look at it), if any."""
    found = open_tasks(session, actor, limit=1, query=query)
    return found[0] if found else None


def tasks_of_instance(session: Session, instance_id: int) -> list[TaskView]:
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound(f"no application process #{instance_id}")
    tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.id)
    )
    return [_instance_view(t, row) for t in tasks]


def _instance_view(task: HumanTask, row: ProcessInstance) -> TaskView:
    return _view(task, row.bundle_key, row.reference, row.amount, row.risk_grade, row.started_by)


def _get(session: Session, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id, populate_existing=True)
    if task is None:
        raise NotFound(f"no task #{task_id}")
    return task


@runtime.guarded
def claim(session: Session, settings: Settings, task_id: int, actor: Actor) -> TaskView:
    """Take a group task so nobody else works on it."""
    task = _get(session, task_id)
    may_act(session, task, actor)
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
    permissions.must_see_task(session, task, actor)
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


@runtime.guarded
def transfer(
    session: Session, settings: Settings, task_id: int, actor: Actor, to_username: str
) -> TaskView:
    """Hand a group task the actor holds (or may take) to a colleague of the same group, who
    must be allowed to decide it (segregation of duties applies to them)."""
    task = _get(session, task_id)
    may_act(session, task, actor)
    if task.group_key is None:
        raise Forbidden("this task is yours alone; it cannot be transferred")
    try:
        target = directory.actor_for(session, to_username)
    except NotFound:
        raise Forbidden(f"`{to_username}` is not an active user") from None
    if target.username == actor.username:
        raise Forbidden("choose a colleague other than yourself")
    if not target.in_group(task.group_key):
        raise Forbidden(f"{to_username} is not in the group of this task")
    # the receiver meets the same segregation-of-duties rule as anyone completing the task
    permissions.segregate(session, task, target)
    task.state, task.assignee, task.claimed_at = "claimed", target.username, clock.now()
    instance = session.get(ProcessInstance, task.instance_id)
    detail = {"task": task.element_id, "from": actor.username, "to": target.username}
    runtime.record(session, settings, instance, "transfer", actor.username, detail)
    return tasks_view(session, task)


def group_members(session: Session, group_key: str) -> list[str]:
    """Usernames of the active members of a group, for choosing whom to transfer to."""
    query = (
        select(User.username)
        .join(Membership, Membership.user_id == User.id)
        .join(Group, Group.id == Membership.group_id)
        .where(Group.key == group_key, User.is_active)
        .order_by(User.username)
    )
    return list(session.scalars(query))


def tasks_view(session: Session, task: HumanTask) -> TaskView:
    return _instance_view(task, session.get(ProcessInstance, task.instance_id))

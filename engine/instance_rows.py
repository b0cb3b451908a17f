"""Keeping the rows that describe an instance in step with its engine state.

Decision: after every advance the ready user tasks, the pending service calls and the next timer
due time are written as rows (indexed for the inbox, the workers and the scheduler), so nobody
ever has to unpack engine state to find work. Rows are only ever added or closed, never rebuilt.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine import assignment, clock, spiff
from engine.models import HumanTask, ProcessInstance, ServiceCall

OPEN = ("ready", "claimed")
OPEN_CALLS = ("pending", "waiting")


def sync(session: Session, loaded) -> list[ServiceCall]:
    """Add rows for new ready user tasks and service calls; close rows of vanished tasks.

    Returns the service calls added, so the caller can record that they were requested, and
    leaves the rows it read or added, and the service tasks now waiting, on `loaded`.
    """
    row, version = loaded.row, loaded.version
    # One pass over the task tree for the three kinds of work (each filter keeps its order).
    active = loaded.workflow.get_tasks(
        state=TaskState.READY | TaskState.STARTED | TaskState.WAITING
    )
    ready = {str(t.id): t for t in active if t.state == TaskState.READY and t.task_spec.manual}
    # Every row of the instance, closed ones too: a task once recorded is never added again.
    humans = loaded.humans
    if humans is None:
        humans = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id)).all()
    known = {h.task_id: h for h in humans}
    for task_id, human in known.items():
        if human.state in OPEN and task_id not in ready:
            human.state = "cancelled"  # an interrupting event or a cancelled branch took it away
    new = [
        _human_task(row, task, version) for task_id, task in ready.items() if task_id not in known
    ]
    session.add_all(new)
    loaded.humans = [*humans, *new]
    added = _sync_service_calls(session, loaded, active)
    # after the queries: one UPDATE of the row, not two
    row.next_due_at = _earliest(t for t in active if t.state == TaskState.WAITING)
    _sync_filters(row, ready.values())
    return added


#: Where an application keeps its amount, by bundle (loan amount, card limit…): first one wins.
AMOUNT_KEYS = ("amount", "loan_amount", "requested_limit", "credit_limit", "limit")


def _sync_filters(row: ProcessInstance, ready) -> None:
    """Copy the amount and the risk grade into the row for the inbox filters.

    Only the data of a ready user task is read (already in memory, no unpacking): that is the
    moment someone can look for the application in an inbox.
    """
    task = next(iter(ready), None)
    if task is None:
        return
    data = task.data  # every ready task of one instance sees the same application
    amount = next((data[k] for k in AMOUNT_KEYS if _is_amount(data.get(k))), None)
    if amount is not None:
        row.amount = Decimal(str(amount))
    grade = risk_grade(data)
    if grade is not None:
        row.risk_grade = grade


def _is_amount(value) -> bool:
    # Numeric(18, 2): anything larger is not an amount the column (or a bank) can hold
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and abs(value) < 10**15


def risk_grade(data: dict) -> str | None:
    """The scorecard's grade (`screening.scorecard` result under `scorecard`), or a
    `risk_grade` the process set itself."""
    for value in (data.get("risk_grade"), data.get("scorecard"), data.get("screening")):
        if isinstance(value, dict):
            value = value.get("grade")
        if isinstance(value, str) and 0 < len(value) <= 8:
            return value
    return None


# Built once: a statement object keeps its cache key, so running it again costs no rebuilding.
_HUMANS_WITH = select(HumanTask).where(
    HumanTask.instance_id
    == select(HumanTask.instance_id).where(HumanTask.id == bindparam("id")).scalar_subquery()
)
_CALLS_WITH = (
    select(ServiceCall)
    .where(
        ServiceCall.instance_id
        == select(ServiceCall.instance_id)
        .where(ServiceCall.id == bindparam("id"))
        .scalar_subquery()
    )
    .execution_options(populate_existing=True)
)


def humans_with(session: Session, human_task_id: int) -> list[HumanTask]:
    """Every human-task row of the instance that task `human_task_id` belongs to, in one query
    (empty if there is no such task): what completing it checks and then syncs."""
    return list(session.scalars(_HUMANS_WITH, {"id": human_task_id}))


def calls_with(session: Session, call_id: int) -> list[ServiceCall]:
    """Every service-call row of the instance that call `call_id` belongs to, read fresh, in
    one query (empty if there is no such call): what applying its outcome checks and syncs."""
    return list(session.scalars(_CALLS_WITH, {"id": call_id}))


def open_work(workflow: BpmnWorkflow) -> tuple[set[str], bool]:
    """In one pass over the ready and started tasks: ids of the service tasks waiting for
    their operator (their calls may need closing later), and whether any user task is ready."""
    waiting, someone_ready = set(), False
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.STARTED):
        if task.state == TaskState.STARTED:
            if spiff.SERVICE_CALL_KEY in task.internal_data:
                waiting.add(str(task.id))
        elif task.task_spec.manual:
            someone_ready = True
    return waiting, someone_ready


def _human_task(row: ProcessInstance, task, version) -> HumanTask:
    meta = version.tasks.get(task.task_spec.name)
    group_key, assignee, due = assignment.inbox_fields(meta, task, row.started_by)
    return HumanTask(
        instance_id=row.id,
        task_id=str(task.id),
        element_id=task.task_spec.name,
        name=meta.name if meta else task.task_spec.name,
        lane=meta.lane if meta else None,
        group_key=group_key,
        assignee=assignee,
        state="ready",
        form=meta.form if meta else None,
        ui_form=meta.ui_form if meta else None,
        due_at=sla_due(task) or due,
    )


def sla_due(task) -> datetime | None:
    """A user task's SLA: the earliest waiting timer boundary event attached to it.

    SpiffWorkflow puts a task with boundary events under a `BoundaryEventSplit`; the events are
    the task's siblings there.
    """
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    due = [_timer_due(t) for t in parent.children if t.state == TaskState.WAITING]
    return min((d for d in due if d is not None), default=None)


def _sync_service_calls(session: Session, loaded, active: list) -> list[ServiceCall]:
    """A row for each service task that asked for a call; open calls of vanished tasks close.

    Open call rows are exactly the calls of the service tasks that waited in the stored state
    (`waiting_calls`), and a task that started since has no row yet: so when nothing waited,
    no row needs reading.
    """
    row, waited_before = loaded.row, loaded.waiting_calls
    started = {
        str(t.id): t
        for t in active
        if t.state == TaskState.STARTED and spiff.SERVICE_CALL_KEY in t.internal_data
    }
    loaded.waiting_calls = set(started)
    if not started and not waited_before:
        return []  # nothing waits on an operator, before or now: no call row can change
    calls = loaded.calls
    if calls is None and not waited_before:
        calls = []
    elif calls is None:
        calls = session.scalars(select(ServiceCall).where(ServiceCall.instance_id == row.id)).all()
    for call in calls:
        if call.status in OPEN_CALLS and call.task_id not in started:
            # an interrupting event or a cancelled branch took the task away: never run it
            call.status, call.finished_at = "cancelled", clock.now()
    known = {call.task_id for call in calls}
    added = [_service_call(row, task) for task_id, task in started.items() if task_id not in known]
    session.add_all(added)
    loaded.calls = [*calls, *added]
    return added


def _service_call(row: ProcessInstance, task) -> ServiceCall:
    call = task.internal_data[spiff.SERVICE_CALL_KEY]
    return ServiceCall(
        instance_id=row.id,
        task_id=str(task.id),
        element_id=task.task_spec.name,
        operator=call["operator"],
        params=call["params"],
        status="pending",
    )


def _earliest(waiting) -> datetime | None:
    """Earliest due time of the waiting timers among `waiting`, so the scheduler can find the
    instance by index."""
    due = [_timer_due(t) for t in waiting]
    return min((d for d in due if d is not None), default=None)


def _timer_due(task) -> datetime | None:
    """When a waiting timer event fires (SpiffWorkflow stores it once the timer is reached)."""
    if not isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
        return None
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):  # a cycle: {'cycles': n, 'next': iso, 'duration': seconds}
        value = value.get("next")
    return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None


def check_depth(workflow: BpmnWorkflow, limit: int) -> None:
    """Stop an instance whose call activities nest deeper than `limit` (validation refuses cycles;
    this is the second line of defence)."""
    deepest = max((sp.depth for sp in workflow.subprocesses.values()), default=0)
    if deepest > limit:
        raise RecursionError(f"call activities nested {deepest} deep (limit {limit})")


def reset_failed_calls(session: Session, instance_id: int) -> None:
    """A retry gives failed service calls a fresh start."""
    session.execute(
        update(ServiceCall)
        .where(ServiceCall.instance_id == instance_id, ServiceCall.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=None)
    )

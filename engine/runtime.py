"""Running process instances: start, advance, complete user tasks, retry after an error.

Decisions: (1) an instance is loaded from its one state row plus the cached specs of its version,
advanced, and written back in the caller's transaction together with the inbox and service-call
rows that describe it; (2) a failing step never saves half a step — the instance keeps its last
good state, shows the error, and `retry` runs the step again once the cause is fixed; (3) a
concurrent writer loses on the version counter and gets `TaskConflict`, nothing half-written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, bundles, clock, forms, identifiers, instance_rows, spiff
from engine.config import Settings
from engine.directory import SYSTEM, Actor
from engine.errors import (
    ApprovalError,
    Conflict,
    ExpressionError,
    Forbidden,
    Invalid,
    NotFound,
    TaskConflict,
)
from engine.models import HumanTask, ProcessInstance

CONFLICT_MESSAGE = "someone else changed this application at the same moment; reload and try again"
STEP_ERRORS = (
    SpiffWorkflowException,
    ExpressionError,
    RecursionError,
    ArithmeticError,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    LookupError,
)


Action = Callable[[BpmnWorkflow], None]


@dataclass
class Loaded:
    """An instance row with its live SpiffWorkflow object and version.

    The state as stored (`base_state`) and the actions applied since (`actions`) rebuild the
    last good state only when a step fails, so a successful request serializes once.
    """

    row: ProcessInstance
    workflow: BpmnWorkflow
    version: bundles.LoadedVersion
    base_state: str | None = None
    actions: list[Action] = field(default_factory=list)
    #: Service tasks that were waiting for an operator when loaded (see instance_rows.sync).
    waiting_calls: set[str] = field(default_factory=set)

    def apply(self, action: Action) -> None:
        """Change the workflow (complete a task, fire timers…) in a way `good_state` can replay."""
        action(self.workflow)
        self.actions.append(action)

    def good_state(self, settings: Settings) -> str:
        if self.base_state is None:
            workflow = spiff.new_workflow(
                self.version.specs, self.version.main_process_id, settings.script_step_limit
            )
        else:
            workflow = spiff.state_from_json(
                self.base_state, self.version.specs, self.row.process_id, settings.script_step_limit
            )
        for action in self.actions:
            action(workflow)
        return spiff.state_to_json(workflow)


def guarded(fn):
    """Run an engine entry point `fn(session, …)` with one flush at its end.

    Autoflush is off inside (every query here reads committed rows or the identity map), so
    a request writes its rows in one unit of work; a lost optimistic-lock race, wherever it
    surfaces, is `TaskConflict`.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, *args, **kwargs):
        try:
            with session.no_autoflush:
                result = fn(session, *args, **kwargs)
            session.flush()
            return result
        except (StaleDataError, IntegrityError):
            raise TaskConflict(CONFLICT_MESSAGE) from None

    return wrapper


def _json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise Invalid([forms.FieldError("(data)", "must be an object with text keys")])
    return data


@guarded
def start(
    session: Session, settings: Settings, bundle_key: str, data: dict[str, Any], actor: Actor
) -> ProcessInstance:
    """Start the live version of `bundle_key` with `data` and run it until it waits."""
    version = bundles.load_live(session, bundle_key)
    workflow = spiff.new_workflow(
        version.specs, version.main_process_id, settings.script_step_limit
    )
    data = _json_object(data)
    row = ProcessInstance(
        bundle_version_id=version.id,
        bundle_key=version.key,
        version_uid=version.uid,
        process_id=version.main_process_id,
        status="running",
        started_by=actor.username,
        state="",  # written by `advance`, in this same transaction
    )
    session.add(row)
    # The number people quote: issued at submission, by the bank's calendar day (China time).
    row.reference = identifiers.issue_reference(session, version.key, _bank_day())
    session.flush()
    loaded = Loaded(row, workflow, version)
    loaded.apply(lambda wf: _set_start_data(wf, data))
    detail = {"version": version.version, "reference": row.reference, "data": data}
    record(session, settings, row, "start", actor.username, detail)
    advance(session, settings, loaded, actor.username)
    return row


def _bank_day() -> date:
    return (clock.now() + timedelta(hours=8)).date()


def _set_start_data(workflow: BpmnWorkflow, data: dict[str, Any]) -> None:
    for task in workflow.get_tasks(state=TaskState.READY):
        task.set_data(**data)


def load(session: Session, settings: Settings, instance_id: int) -> Loaded:
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound(f"no application process #{instance_id}")
    version = bundles.load(session, uid=row.version_uid)
    workflow = spiff.state_from_json(
        row.state, version.specs, row.process_id, settings.script_step_limit
    )
    waiting = instance_rows.waiting_service_tasks(workflow)
    return Loaded(row, workflow, version, base_state=row.state, waiting_calls=waiting)


def advance(session: Session, settings: Settings, loaded: Loaded, actor: str) -> None:
    """Run engine steps until every path waits; on a failing step keep the last good state."""
    row, workflow = loaded.row, loaded.workflow
    try:
        workflow.do_engine_steps()
        instance_rows.check_depth(workflow, settings.max_call_depth)
    except STEP_ERRORS as err:
        _fail(session, settings, row, loaded.good_state(settings), err, actor)
        return
    for call in instance_rows.sync(session, loaded):
        detail = {"task": call.element_id, "operator": call.operator, "params": call.params}
        record(session, settings, row, "service_request", actor, detail)
    row.state = spiff.state_to_json(workflow)
    loaded.base_state, loaded.actions = row.state, []
    loaded.waiting_calls = instance_rows.waiting_service_tasks(workflow)
    row.error_message = row.error_task = None
    if workflow.is_completed():
        row.status, row.completed_at, row.next_due_at = "completed", clock.now(), None
        record(session, settings, row, "completed", actor, {"end": _end_event(workflow)})
    else:
        row.status = "waiting"
    flush(session)


def _end_event(workflow: BpmnWorkflow) -> str | None:
    ends = [
        t
        for t in workflow.get_tasks(state=TaskState.COMPLETED)
        if type(t.task_spec).__name__ == "EndEvent"
    ]
    return ends[-1].task_spec.name if ends else None


def _fail(
    session, settings, row: ProcessInstance, good_state: str, err: Exception, actor: str
) -> None:
    task = getattr(err, "task", None)
    row.status = "error"
    row.state = good_state
    row.error_task = task.task_spec.name if task is not None else None
    row.error_message = _describe(err)
    record(
        session,
        settings,
        row,
        "error",
        actor,
        {"task": row.error_task, "message": row.error_message},
    )
    flush(session)


# SpiffWorkflow's wrapper for a failed condition; the expression is worth showing, the rest not.
_FAILED_EXPRESSION = re.compile(r"Error evaluating expression '(.*)'", re.DOTALL)


def _describe(err: Exception) -> str:
    """What failed, where, and why, in words an analyst can act on (the cause, not the wrapper)."""
    if isinstance(err, RecursionError):
        return "the process nests call activities too deeply"
    cause = _approval_cause(err)
    text = str(err) if cause is None else str(cause)
    expression = _FAILED_EXPRESSION.match(str(err))
    if cause is not None and expression:
        reason = cause.reason if isinstance(cause, ExpressionError) else text  # one line only
        text = f"the expression `{expression.group(1)}` failed: {reason}"
    task = getattr(err, "task", None)
    if task is not None:
        spec = task.task_spec
        name = getattr(spec, "bpmn_name", None)
        text = f"{spec.name} ({name}): {text}" if name else f"{spec.name}: {text}"
    return text[:2000]


def _approval_cause(err: BaseException) -> ApprovalError | None:
    """Our own error under SpiffWorkflow's wrapper, which keeps it only as the context."""
    for _ in range(10):  # a bounded walk: exception chains may loop
        if err is None or isinstance(err, ApprovalError):
            return err
        err = err.__cause__ or err.__context__
    return None


@guarded
def retry(session: Session, settings: Settings, instance_id: int, actor: Actor) -> ProcessInstance:
    """Run the failed step again (after the diagram, data or operator was fixed)."""
    loaded = load(session, settings, instance_id)
    if loaded.row.status != "error":
        raise Conflict(f"application process #{instance_id} is not in error")
    record(
        session, settings, loaded.row, "retry", actor.username, {"error": loaded.row.error_message}
    )
    instance_rows.reset_failed_calls(session, loaded.row.id)
    advance(session, settings, loaded, actor.username)
    return loaded.row


@guarded
def complete_task(
    session: Session, settings: Settings, human_task_id: int, actor: Actor, data: dict[str, Any]
) -> HumanTask:
    """Complete a ready user task with form data the task's form accepts, then run on."""
    human = session.get(HumanTask, human_task_id)
    if human is None:
        raise NotFound(f"no task #{human_task_id}")
    loaded = load(session, settings, human.instance_id)
    may_act(session, human, actor)
    schema = loaded.version.forms.get(human.form) if human.form else None
    data = forms.validate(schema, data)
    if loaded.row.status == "error":
        raise Conflict("this application is stopped by an error; it must be retried first")
    task = loaded.workflow.get_task_from_id(UUID(human.task_id))
    if task is None or task.state != TaskState.READY:
        raise TaskConflict("this task can no longer be completed (the application moved on)")
    try:
        loaded.apply(lambda wf: _run_user_task(wf, human.task_id, data))
    except STEP_ERRORS as err:
        _fail(session, settings, loaded.row, loaded.good_state(settings), err, actor.username)
        return human  # still open: once retried, it can be completed again
    human.state, human.completed_by, human.completed_at = "completed", actor.username, clock.now()
    human.submitted = data
    detail = {"task": human.element_id, "name": human.name, "data": data}
    record(session, settings, loaded.row, "complete", actor.username, detail)
    advance(session, settings, loaded, actor.username)
    return human


def _run_user_task(workflow: BpmnWorkflow, task_id: str, data: dict[str, Any]) -> None:
    task = workflow.get_task_from_id(UUID(task_id))
    task.set_data(**data)
    task.run()  # a user task's post-script runs here


def may_act(session: Session, human: HumanTask, actor: Actor) -> None:
    """The one rule for acting on a task: open, yours or your group's and not someone else's,
    and (segregation of duties) never a second level of, or a review of, your own application."""
    _may_take(human, actor)
    if human.group_key is not None:
        _segregate(session, human, actor)


def _segregate(session: Session, human: HumanTask, actor: Actor) -> None:
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


def record(session, settings, row: ProcessInstance, kind: str, actor: str, data: dict) -> None:
    """Append an event to the instance's audit stream (flushed with the rest of the work)."""
    audit.append(
        session,
        key=settings.secret_key,
        stream=audit.instance_stream(row.id),
        kind=kind,
        actor=actor or SYSTEM,
        data=data,
        instance_id=row.id,
    )


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-lock race into `TaskConflict`."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise TaskConflict(CONFLICT_MESSAGE) from None

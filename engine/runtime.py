"""Running process instances: start, advance, complete user tasks, retry after an error.

Decisions: (1) an instance is loaded from its one state row plus the cached specs of its version,
advanced, and written back in the caller's transaction together with the inbox and service-call
rows that describe it; (2) a failing step never saves half a step — the instance keeps its last
good state, shows the error, and `retry` runs the step again once the cause is fixed; (3) a
concurrent writer loses on the version counter and gets `TaskConflict`, nothing half-written;
(4) with `defer=True` a request only records what the person did and hands the instance to a
worker (`status = "running"`, published after commit), which runs the steps in
`advance_instance`: a click never waits for engine steps, scripts or services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, bundles, clock, dispatch, forms, identifiers, instance_rows, spiff
from engine.config import Settings
from engine.conflicts import flush, guarded
from engine.directory import SYSTEM, Actor
from engine.errors import (
    Conflict,
    Invalid,
    NotFound,
    TaskConflict,
)
from engine.failures import STEP_ERRORS, describe
from engine.models import HumanTask, ProcessInstance, ServiceCall
from engine.permissions import may_act

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
    #: Every human-task / service-call row of the instance, when already read in this
    #: transaction or known to be none (None: `instance_rows.sync` reads them).
    humans: list[HumanTask] | None = None
    calls: list[ServiceCall] | None = None

    def apply(self, action: Action) -> None:
        """Change the workflow (complete a task, fire timers…) in a way `good_state` can replay."""
        action(self.workflow)
        self.actions.append(action)

    def good_state(self, settings: Settings) -> str:
        if self.base_state is None:
            workflow = spiff.new_workflow(
                self.version.specs,
                self.version.main_process_id,
                settings.script_step_limit,
                initiator=self.row.started_by,
            )
        else:
            workflow = spiff.state_from_json(
                self.base_state, self.version.specs, self.row.process_id, settings.script_step_limit
            )
        for action in self.actions:
            action(workflow)
        return spiff.state_to_json(workflow)


def _json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise Invalid([forms.FieldError("(data)", "must be an object with text keys")])
    return data


@guarded
def start(
    session: Session,
    settings: Settings,
    bundle_key: str,
    data: dict[str, Any],
    actor: Actor,
    *,
    defer: bool = False,
) -> ProcessInstance:
    """Start the live version of `bundle_key` with `data` and run it until it waits (or, with
    `defer`, hand it to a worker that does)."""
    version = bundles.load_live(session, bundle_key)
    workflow = spiff.new_workflow(
        version.specs,
        version.main_process_id,
        settings.script_step_limit,
        initiator=actor.username,
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
    # The number people quote: issued at submission, by the bank's calendar day (China time).
    # Issued before the row is added, so the row is one INSERT with it.
    row.reference = identifiers.issue_reference(session, version.key, _bank_day())
    session.add(row)
    session.flush()
    loaded = Loaded(row, workflow, version, humans=[], calls=[])  # new: it has no rows yet
    loaded.apply(lambda wf: _set_start_data(wf, data))
    detail = {"version": version.version, "reference": row.reference, "data": data}
    record(session, settings, row, "start", actor.username, detail)
    _run_on(session, settings, loaded, actor.username, defer)
    return row


def _bank_day() -> date:
    return (clock.now() + timedelta(hours=8)).date()


def _set_start_data(workflow: BpmnWorkflow, data: dict[str, Any]) -> None:
    for task in workflow.get_tasks(state=TaskState.READY):
        task.set_data(**data)


def load(
    session: Session,
    settings: Settings,
    instance_id: int,
    *,
    humans: list[HumanTask] | None = None,
    calls: list[ServiceCall] | None = None,
) -> Loaded:
    """The instance with its workflow; `humans` / `calls`: all its rows of that kind, if the
    caller read them already (saves `instance_rows.sync` the query)."""
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        raise NotFound(f"no application process #{instance_id}")
    version = bundles.load(session, uid=row.version_uid)
    workflow = spiff.state_from_json(
        row.state, version.specs, row.process_id, settings.script_step_limit
    )
    waiting, someone_ready = instance_rows.open_work(workflow)
    if humans is None and not someone_ready:
        # No user task was ready, so no inbox row is open, and a task ready after this request
        # has never had one: `sync` has no row to read.
        humans = []
    return Loaded(
        row, workflow, version, row.state, waiting_calls=waiting, humans=humans, calls=calls
    )


def _run_on(session: Session, settings: Settings, loaded: Loaded, actor: str, defer: bool):
    if defer:
        hand_off(session, loaded)
    else:
        advance(session, settings, loaded, actor)


def hand_off(session: Session, loaded: Loaded) -> None:
    """Save what was done so far and leave the engine steps to a worker (`advance_instance`)."""
    row = loaded.row
    row.state = spiff.state_to_json(loaded.workflow)
    loaded.base_state, loaded.actions = row.state, []
    row.status = "running"
    dispatch.queue(session, dispatch.ADVANCE, row.id)


@guarded
def advance_instance(session: Session, settings: Settings, instance_id: int) -> bool:
    """Run the engine steps of a handed-off instance; False, doing nothing, unless it is
    `running` (so a job delivered twice, or after a crash, does its work once)."""
    row = session.get(ProcessInstance, instance_id, populate_existing=True)
    if row is None or row.status != "running":
        return False
    advance(session, settings, load(session, settings, instance_id), SYSTEM)
    return True


def advance(session: Session, settings: Settings, loaded: Loaded, actor: str) -> None:
    """Run engine steps until every path waits; on a failing step keep the last good state."""
    row, workflow = loaded.row, loaded.workflow
    try:
        workflow.do_engine_steps()
        instance_rows.check_depth(workflow, settings.max_call_depth)
    except STEP_ERRORS as err:
        _fail(session, settings, row, loaded.good_state(settings), err, actor)
        return
    added = instance_rows.sync(session, loaded)
    for call in added:
        detail = {"task": call.element_id, "operator": call.operator, "params": call.params}
        record(session, settings, row, "service_request", actor, detail)
    row.state = spiff.state_to_json(workflow)
    loaded.base_state, loaded.actions = row.state, []
    row.error_message = row.error_task = None
    if workflow.is_completed():
        row.status, row.completed_at, row.next_due_at = "completed", clock.now(), None
        record(session, settings, row, "completed", actor, {"end": _end_event(workflow)})
    else:
        row.status = "waiting"
    flush(session)
    for call in added:  # ids exist once flushed; a worker runs each call after commit
        dispatch.queue(session, dispatch.CALL, call.id)


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
    row.error_message = describe(err)
    record(
        session,
        settings,
        row,
        "error",
        actor,
        {"task": row.error_task, "message": row.error_message},
    )
    flush(session)


@guarded
def stop_after_crash(
    session: Session, settings: Settings, instance_id: int, err: Exception
) -> bool:
    """Stop an instance whose steps raised an error that is not a step error (a bug in
    the engine or an operator's host, not in the diagram): it shows the error and waits for
    `retry`, instead of being swept and crashing again every `sweep_after` seconds."""
    row = session.get(ProcessInstance, instance_id, populate_existing=True)
    if row is None or row.status not in ("running", "waiting"):  # waiting: a timer's firing
        return False
    row.status = "error"
    row.error_message = (
        f"an internal error stopped this application ({type(err).__name__}: {err}"[:1900]
        + "); it was logged for the operators, and the application can be retried once fixed"
    )
    record(session, settings, row, "error", SYSTEM, {"task": None, "message": row.error_message})
    return True


@guarded
def retry(
    session: Session, settings: Settings, instance_id: int, actor: Actor, *, defer: bool = False
) -> ProcessInstance:
    """Run the failed step again (after the diagram, data or operator was fixed)."""
    loaded = load(session, settings, instance_id)
    if loaded.row.status != "error":
        raise Conflict(f"application process #{instance_id} is not in error")
    record(
        session, settings, loaded.row, "retry", actor.username, {"error": loaded.row.error_message}
    )
    failed = select(ServiceCall.id).where(
        ServiceCall.instance_id == instance_id, ServiceCall.status == "failed"
    )
    for call_id in session.scalars(failed):
        dispatch.queue(session, dispatch.CALL, call_id)  # pending again from the reset below
    instance_rows.reset_failed_calls(session, loaded.row.id)
    _run_on(session, settings, loaded, actor.username, defer)
    return loaded.row


@guarded
def complete_task(
    session: Session,
    settings: Settings,
    human_task_id: int,
    actor: Actor,
    data: dict[str, Any],
    *,
    defer: bool = False,
) -> HumanTask:
    """Complete a ready user task with form data the task's form accepts, then run on (or,
    with `defer`, hand the instance to a worker that does)."""
    humans = instance_rows.humans_with(session, human_task_id)
    human = next((h for h in humans if h.id == human_task_id), None)
    if human is None:
        raise NotFound(f"no task #{human_task_id}")
    loaded = load(session, settings, human.instance_id, humans=humans)
    may_act(session, human, actor, tasks=humans)
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
    _run_on(session, settings, loaded, actor.username, defer)
    return human


def _run_user_task(workflow: BpmnWorkflow, task_id: str, data: dict[str, Any]) -> None:
    task = workflow.get_task_from_id(UUID(task_id))
    task.set_data(**data)
    task.run()  # a user task's post-script runs here


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

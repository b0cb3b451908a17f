"""Running the operators that service tasks asked for, outside any engine step.

Decision: a service task records its call as a `pending` row in the same transaction as the
instance state. Running it is two short transactions around the operator (read the call; apply
the outcome), so a slow bureau or SMTP server never holds a database lock. Applying is
idempotent: a call that is no longer pending is left alone, so a redelivered job does nothing.
A job is published for each new call, and for each retry after its back-off (`dispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from engine import bundles, clock, dispatch, instance_rows, operators, runtime, spiff
from engine.config import Settings
from engine.directory import SYSTEM
from engine.errors import Conflict, NotFound
from engine.models import ProcessInstance, ServiceCall

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 2.0
APPLY_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """What running an operator once gave: a result, a wait, or a failure (maybe retryable)."""

    result: dict[str, Any] | None = None
    waiting: bool = False
    error: str | None = None
    retry: bool = False


def due_calls(session: Session, limit: int = 100) -> list[int]:
    now = clock.now()
    return list(
        session.scalars(
            select(ServiceCall.id)
            .where(ServiceCall.status == "pending")
            .where((ServiceCall.next_attempt_at.is_(None)) | (ServiceCall.next_attempt_at <= now))
            .order_by(ServiceCall.id)
            .limit(limit)
        )
    )


def call_info(session: Session, settings: Settings, call: ServiceCall, session_factory=None):
    """What the operator of `call` may know: its instance, application number and bundle data."""
    row = session.get(ProcessInstance, call.instance_id)
    version = bundles.load(session, uid=row.version_uid)
    return operators.CallInfo(
        call.id,
        call.instance_id,
        call.element_id,
        call.attempts + 1,
        settings,
        bundle_key=row.bundle_key,
        reference=row.reference,
        started_by=row.started_by,
        data=version.data,
        session_factory=session_factory,
    )


def invoke(call: ServiceCall, info: operators.CallInfo) -> Outcome:
    """Run the operator of `call` once; never raises for the operator's own failures."""
    fn = operators.get(call.operator)
    if fn is None:
        return Outcome(error=f"the operator `{call.operator}` is not installed", retry=False)
    try:
        result = fn(dict(call.params or {}), info)
    except operators.OperatorFailed as err:
        return Outcome(error=str(err), retry=err.retry)
    except Exception as err:  # an operator bug must not take the worker down; it is recorded
        return Outcome(error=f"{type(err).__name__}: {err}", retry=False)
    if result is operators.WAIT:
        return Outcome(waiting=True)
    if not isinstance(result, dict):
        return Outcome(
            error=f"the operator `{call.operator}` returned no result object", retry=False
        )
    return Outcome(result=result)


@runtime.guarded
def apply(session: Session, settings: Settings, call_id: int, outcome: Outcome) -> None:
    """Record `outcome` for a pending call: complete its task, schedule a retry, or fail."""
    calls = instance_rows.calls_with(session, call_id)  # fresh: the status decides
    call = next((c for c in calls if c.id == call_id), None)
    if call is None:
        raise NotFound(f"no service call #{call_id}")
    if call.status != "pending":
        return
    with session.no_autoflush:  # one UPDATE of the call with everything, not one per query
        _record_outcome(session, settings, call, outcome, calls)
    runtime.flush(session)


def _record_outcome(
    session: Session, settings: Settings, call: ServiceCall, outcome, calls: list[ServiceCall]
) -> None:
    call.attempts += 1
    if outcome.waiting:
        call.status = "waiting"
    elif outcome.result is not None:
        _complete(session, settings, call, outcome.result, calls)
    elif outcome.retry and call.attempts < MAX_ATTEMPTS:
        _retry_later(session, settings, call, outcome.error or "failed")
    else:
        _give_up(session, settings, call, outcome.error or "failed")


@runtime.guarded
def complete_later(
    session: Session, settings: Settings, call_id: int, result: dict[str, Any]
) -> None:
    """The answer of an operator that returned `WAIT` has arrived."""
    call = session.get(ServiceCall, call_id, populate_existing=True)
    if call is None:
        raise NotFound(f"no service call #{call_id}")
    if call.status != "waiting":
        raise Conflict(f"service call #{call_id} is {call.status}, not waiting for an answer")
    _complete(session, settings, call, result)
    runtime.flush(session)


def _complete(
    session: Session,
    settings: Settings,
    call: ServiceCall,
    result: dict,
    calls: list[ServiceCall] | None = None,
) -> None:
    """Answer the call's task and run on; `calls`: every call row of the instance, if read."""
    loaded = runtime.load(session, settings, call.instance_id, calls=calls)
    task = loaded.workflow.get_task_from_id(UUID(call.task_id))
    call.status, call.result, call.finished_at, call.error = "done", result, clock.now(), None
    if task is None or task.state != TaskState.STARTED:
        return  # the branch was cancelled meanwhile (an interrupting timer, say): nothing to do
    loaded.apply(lambda wf: _answer(wf, call.task_id, result))
    runtime.record(
        session,
        settings,
        loaded.row,
        "service_call",
        SYSTEM,
        {"task": call.element_id, "operator": call.operator, "result": result},
    )
    if loaded.row.status == "error":
        # Another branch failed: keep the answer, but only `retry` may run the steps again,
        # or this advance would quietly clear that error.
        loaded.row.state = spiff.state_to_json(loaded.workflow)
        return
    runtime.advance(session, settings, loaded, SYSTEM)


def _answer(workflow, task_id: str, result: dict) -> None:
    task = workflow.get_task_from_id(UUID(task_id))
    task.data[task.task_spec.result_variable] = result
    task.complete()


def _retry_later(session: Session, settings: Settings, call: ServiceCall, error: str) -> None:
    call.error = error
    delay = BACKOFF_SECONDS * 2**call.attempts
    call.next_attempt_at = clock.now() + timedelta(seconds=delay)
    dispatch.queue(session, dispatch.CALL, call.id, countdown=delay)
    row = session.get(ProcessInstance, call.instance_id)
    runtime.record(
        session,
        settings,
        row,
        "service_retry",
        SYSTEM,
        {
            "task": call.element_id,
            "operator": call.operator,
            "attempt": call.attempts,
            "message": error,
            "next_attempt_at": call.next_attempt_at.isoformat(),
        },
    )


def _give_up(session: Session, settings: Settings, call: ServiceCall, error: str) -> None:
    call.status, call.error, call.finished_at = "failed", error, clock.now()
    row = session.get(ProcessInstance, call.instance_id)
    row.status = "error"
    row.error_task = call.element_id
    row.error_message = f"the service `{call.operator}` failed: {error}"
    runtime.record(
        session,
        settings,
        row,
        "error",
        SYSTEM,
        {"task": call.element_id, "operator": call.operator, "message": row.error_message},
    )


#: The instance comes along with the call: `call_info` then finds it in the session. Built once.
_CALL_AND_INSTANCE = (
    select(ServiceCall, ProcessInstance)
    .join(ProcessInstance, ProcessInstance.id == ServiceCall.instance_id)
    .where(ServiceCall.id == bindparam("id"))
)


def run_call(session_factory: sessionmaker, settings: Settings, call_id: int) -> None:
    """Read, run and apply one call, each database step its own short transaction."""
    with session_factory() as session:
        found = session.execute(_CALL_AND_INSTANCE, {"id": call_id}).first()
        call = found[0] if found else None
        if call is None or call.status != "pending":
            return
        info = call_info(session, settings, call, session_factory)
        session.expunge(call)
    outcome = invoke(call, info)
    for attempt in range(APPLY_ATTEMPTS):
        try:
            with session_factory() as session, session.begin():
                apply(session, settings, call_id, outcome)
            return
        except Conflict:
            # A person acted on the same instance meanwhile: apply the same outcome again
            # rather than run the operator twice; a call no longer pending is left alone.
            if attempt == APPLY_ATTEMPTS - 1:
                raise


def run_due(session_factory: sessionmaker, settings: Settings, limit: int = 100) -> int:
    """Run every due call once, here and now (tests; workers run each call as its own job)."""
    with session_factory() as session:
        ids = due_calls(session, limit)
    for call_id in ids:
        try:
            run_call(session_factory, settings, call_id)
        except Conflict:
            continue  # still pending: the next round runs it again
    return len(ids)

"""What people do in the integration tests, through the engine API as the web app does it:
start and complete with `defer=True` (the worker processes run the steps), then read back."""

from __future__ import annotations

import collections
from pathlib import Path

from sqlalchemy import func, select

from engine import audit, inbox, operators, runtime
from engine.directory import Actor
from engine.errors import Conflict
from engine.models import AuditEvent, ProcessInstance, ServiceCall


def start(deployment, key: str, actor: Actor, data: dict | None = None) -> int:
    with deployment.sessions.begin() as session:
        row = runtime.start(session, deployment.settings, key, data or {}, actor, defer=True)
        return row.id


def task_of(deployment, actor: Actor, instance_id: int, element_id: str):
    """The open task `element_id` of the instance in `actor`'s inbox, or None."""
    with deployment.sessions() as session:
        for task in inbox.open_tasks(session, actor, limit=500):
            if task.instance_id == instance_id and task.element_id == element_id:
                return task
    return None


def complete(deployment, actor: Actor, task, data: dict) -> bool:
    """Complete `task` as the web app will; False if a worker was changing the instance."""
    try:
        with deployment.sessions.begin() as session:
            runtime.complete_task(session, deployment.settings, task.id, actor, data, defer=True)
    except Conflict:
        return False
    return True


def act(deployment, actor: Actor, instance_id: int, element_id: str, data: dict) -> None:
    """Wait for the task to reach the inbox (a worker puts it there), then complete it."""

    def done() -> bool:
        task = task_of(deployment, actor, instance_id, element_id)
        return task is not None and complete(deployment, actor, task, data)

    deployment.wait(done, 60, f"{element_id} of #{instance_id} for {actor.username}")


def statuses(deployment, ids: list[int]) -> dict[int, str]:
    with deployment.sessions() as session:
        query = select(ProcessInstance.id, ProcessInstance.status)
        return dict(session.execute(query.where(ProcessInstance.id.in_(ids))).all())


def all_completed(deployment, ids: list[int]) -> bool:
    return set(statuses(deployment, ids).values()) == {"completed"}


def event_counts(deployment, instance_id: int) -> collections.Counter:
    with deployment.sessions() as session:
        kinds = [e.kind for e in audit.events_for_instance(session, instance_id)]
    return collections.Counter(kinds)


def kinds_by_instance(deployment, kind: str) -> dict[int, int]:
    """How many events of `kind` each instance has (instances with none are left out)."""
    with deployment.sessions() as session:
        query = (
            select(AuditEvent.instance_id, func.count())
            .where(AuditEvent.kind == kind)
            .group_by(AuditEvent.instance_id)
        )
        return dict(session.execute(query).all())


def calls(deployment, ids: list[int]) -> list[ServiceCall]:
    with deployment.sessions() as session:
        query = select(ServiceCall).where(ServiceCall.instance_id.in_(ids))
        return list(session.scalars(query.order_by(ServiceCall.id)))


def audit_problems(deployment) -> list[str]:
    with deployment.sessions() as session:
        return audit.verify(session, key=deployment.settings.secret_key)


def register_slow_operator(monkeypatch) -> None:
    """`test.slow` in this process too, so bundles naming it pass validation when deployed."""
    monkeypatch.setattr(operators, "_REGISTRY", dict(operators._REGISTRY))
    operators.operator("test.slow")(lambda params, call: {"ok": True})


def fault_phases(log: Path) -> list[tuple[str, str, int]]:
    """(begin|end, what, pid) for every line of the fault-injection log."""
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [(phase, what, int(pid)) for phase, what, pid in rows]


def open_phases(log: Path) -> dict[int, str]:
    """pid → the phase it is in now (begun, not ended), from the fault-injection log."""
    current: dict[int, str] = {}
    for phase, what, pid in fault_phases(log):
        if phase == "begin":
            current[pid] = what
        else:
            current.pop(pid, None)
    return current

"""Firing due timers: boundary and intermediate timer events, SLA reminders, escalations.

Decision: each instance row carries the due time of its earliest timer (`next_due_at`, indexed),
so finding due work is one indexed query; each due instance is then advanced in its own
transaction, and one that lost a race to a concurrent writer is simply picked up next round.
A timer fires once however many schedulers look: `fire` checks the due time again inside its
transaction, and the instance's version counter lets only one of two concurrent firings commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import clock, dispatch, runtime
from engine.config import Settings
from engine.directory import SYSTEM
from engine.errors import Conflict
from engine.models import ProcessInstance


def due_instances(session: Session, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or clock.now()
    return list(
        session.scalars(
            select(ProcessInstance.id)
            .where(ProcessInstance.next_due_at <= now, ProcessInstance.status == "waiting")
            .order_by(ProcessInstance.next_due_at)
            .limit(limit)
        )
    )


def queue_due(session: Session, limit: int = 500) -> int:
    """Queue a `fire` job for every instance with a due timer (beat's periodic look)."""
    ids = due_instances(session, limit=limit)
    for instance_id in ids:
        dispatch.queue(session, dispatch.TIMER, instance_id)
    return len(ids)


@runtime.guarded
def fire(session: Session, settings: Settings, instance_id: int) -> bool:
    """Advance one instance whose timer is due; False if it was not due (any more)."""
    row = session.get(ProcessInstance, instance_id, populate_existing=True)
    due = row.next_due_at if row is not None and row.status == "waiting" else None
    if due is None or due > clock.now():
        return False
    loaded = runtime.load(session, settings, instance_id)
    # SpiffWorkflow marks a due timer ready in refresh_timers(); the branch runs in the steps after.
    loaded.apply(lambda wf: wf.refresh_timers())
    runtime.record(session, settings, row, "timer", SYSTEM, {"due": due.isoformat()})
    runtime.advance(session, settings, loaded, SYSTEM)
    return True


def advance_due(
    session_factory: sessionmaker, settings: Settings, now: datetime | None = None
) -> int:
    """Fire every due timer, one transaction per instance; returns how many instances moved."""
    with session_factory() as session:
        ids = due_instances(session, now)
    fired = 0
    for instance_id in ids:
        try:
            with session_factory() as session, session.begin():
                fired += fire(session, settings, instance_id)
        except Conflict:
            continue  # someone else advanced it meanwhile; its next due time is fresh
    return fired

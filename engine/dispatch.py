"""Publishing background work after the transaction that made it commits, and the sweeper.

Decision: engine functions never talk to a broker. They note the work a change makes necessary
(an instance to advance, a service call to run, a due timer to fire) in `session.info`; a
`Session` `after_commit` listener hands it to the publisher the host installed (`install`), and
a rollback drops it, so no job ever names a row that was not committed. The rows themselves are
the outbox: a process that dies between commit and publish loses only the message, and `sweep`
publishes again what has waited too long (instances left `running`, calls left `pending`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from engine import clock
from engine.config import Settings
from engine.models import ProcessInstance, ServiceCall

log = logging.getLogger(__name__)

#: Kinds of work: run an instance's engine steps, run a service call, fire a due timer.
ADVANCE, CALL, TIMER = "advance", "call", "timer"
_KEY = "approval.dispatch"


@dataclass(frozen=True)
class Work:
    """One job to publish: `kind` of work on the row `id`, after `countdown` seconds if given."""

    kind: str
    id: int
    countdown: float | None = None


Publisher = Callable[[list[Work]], None]
_publisher: Publisher | None = None


def install(publisher: Publisher | None) -> Publisher | None:
    """Send the work of every later commit in this process to `publisher`; returns the previous.

    With none installed the work is dropped and the sweeper finds it after `sweep_after`.
    """
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous


def queue(session: Session, kind: str, ident: int, countdown: float | None = None) -> None:
    """Publish `kind` work on row `ident` once the session's transaction commits."""
    session.connection()  # a transaction exists now, so even a rollback before any SQL drops this
    session.info.setdefault(_KEY, {}).setdefault((kind, ident), Work(kind, ident, countdown))


def queued(session: Session) -> list[Work]:
    """The work this session's transaction will publish when it commits."""
    return list(session.info.get(_KEY, {}).values())


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; its work is published with the real commit
    work = list(session.info.pop(_KEY, {}).values())
    if not work or _publisher is None:
        return
    try:
        _publisher(work)
    except Exception:  # the commit stands; the sweeper publishes this work again later
        log.exception("could not publish %d job(s); the sweeper will publish them", len(work))


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:  # a savepoint's rollback keeps the outer work
        session.info.pop(_KEY, None)


def sweep(session: Session, settings: Settings, limit: int = 500) -> int:
    """Queue again the work a lost message left behind; how many jobs were queued.

    Each row found is stamped with now, so it is published again only after a further
    `sweep_after` seconds: a long queue is not flooded with copies of the same job.
    """
    now = clock.now()
    cutoff = now - timedelta(seconds=settings.sweep_after)
    instances = _stamp(
        session,
        ProcessInstance,
        (ProcessInstance.status == "running", ProcessInstance.updated_at < cutoff),
        {"updated_at": now},
        limit,
    )
    since = func.coalesce(ServiceCall.next_attempt_at, ServiceCall.created_at)
    calls = _stamp(
        session,
        ServiceCall,
        (ServiceCall.status == "pending", since < cutoff),
        {"next_attempt_at": now},
        limit,
    )
    for instance_id in instances:
        queue(session, ADVANCE, instance_id)
    for call_id in calls:
        queue(session, CALL, call_id)
    return len(instances) + len(calls)


def _stamp(session: Session, model, where: tuple, values: dict[str, datetime], limit: int):
    """UPDATE the rows matching `where` (re-checked by the UPDATE itself) and return their ids.

    A plain UPDATE leaves the optimistic-lock version alone: an engine step running meanwhile
    still commits, and this stamp changes nothing it reads.
    """
    oldest = select(model.id).where(*where).order_by(model.id).limit(limit)
    statement = (
        update(model)
        .where(model.id.in_(oldest.scalar_subquery()), *where)
        .values(**values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))

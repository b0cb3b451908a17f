"""Background jobs: the work units a worker runs, their Celery tasks, and the publishers.

Decision: a job takes one id, opens its own session and runs one transaction (a service call:
the two short ones around its operator); it is idempotent, because delivery is at least once —
`acks_late`, redelivered when a worker dies, retried with back-off on a lost race or a database
hiccup, published again by the sweeper when a message is lost. A job delivered twice finds its
work done and does nothing. The plain functions are what the tasks run, so tests and
benchmarks (`LocalQueue`) run the very same code without a broker.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import Celery, shared_task
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine import dispatch, runtime, service_calls, timers
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from engine.dispatch import ADVANCE, CALL, TIMER, Work
from engine.errors import Conflict

Sessions = sessionmaker[Session]
log = logging.getLogger(__name__)

# --- the work, one transaction each -------------------------------------------------------------


def advance(sessions: Sessions, settings: Settings, instance_id: int) -> bool:
    """Run the engine steps of a handed-off instance (nothing if it no longer runs)."""
    with _stopping_on_crash(sessions, settings, instance_id), sessions.begin() as session:
        return runtime.advance_instance(session, settings, instance_id)
    return False  # stopped by an internal error (see _stopping_on_crash)


def run_service_call(sessions: Sessions, settings: Settings, call_id: int) -> None:
    """Run a pending call's operator and apply its outcome (nothing if no longer pending)."""
    service_calls.run_call(sessions, settings, call_id)


def fire_timer(sessions: Sessions, settings: Settings, instance_id: int) -> bool:
    """Fire the due timer of an instance (nothing if it is not due any more)."""
    with _stopping_on_crash(sessions, settings, instance_id), sessions.begin() as session:
        return timers.fire(session, settings, instance_id)
    return False


@contextmanager
def _stopping_on_crash(sessions: Sessions, settings: Settings, instance_id: int):
    """Lost races and database hiccups propagate (the task retries them); any other error is a
    bug that would crash again on every redelivery and sweep, so the instance is stopped with
    the error shown and logged (the step's transaction rolled back; `retry` runs it again)."""
    try:
        yield
    except (Conflict, OperationalError):
        raise
    except Exception as err:
        log.exception("instance %s stopped by an internal error", instance_id)
        with sessions.begin() as session:
            runtime.stop_after_crash(session, settings, instance_id, err)


def fire_due_timers(sessions: Sessions, settings: Settings) -> int:
    """Publish a `fire_timer` job for every instance whose timer is due."""
    with sessions.begin() as session:
        return timers.queue_due(session)


def sweep(sessions: Sessions, settings: Settings) -> int:
    """Publish again the work whose message was lost (see `dispatch.sweep`)."""
    with sessions.begin() as session:
        return dispatch.sweep(session, settings)


def tidy_broker(settings: Settings, keep_seconds: float = 3600) -> int:
    """Delete the messages Kombu's SQL transport consumed (it marks them, never deletes them)."""
    engine = make_engine(settings.broker_url.removeprefix("sqla+"))
    cutoff = datetime.now() - timedelta(seconds=keep_seconds)  # Kombu stamps local time
    try:
        with engine.begin() as conn:
            return conn.execute(_CONSUMED, {"no": False, "cutoff": cutoff}).rowcount
    finally:
        engine.dispose()


_CONSUMED = text("DELETE FROM kombu_message WHERE visible = :no AND timestamp < :cutoff")


HANDLERS = {ADVANCE: advance, CALL: run_service_call, TIMER: fire_timer}
TASK_NAMES = {
    ADVANCE: "approval.advance",
    CALL: "approval.run_service_call",
    TIMER: "approval.fire_timer",
}


# --- where a worker process finds its settings and database ---------------------------------------


@dataclass
class _Host:
    settings: Settings | None = None
    engine: Engine | None = None
    sessions: Sessions | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_host = _Host()


def bind(settings: Settings | None) -> None:
    """Give this process's tasks their settings (the worker app does it when it starts)."""
    after_fork()
    _host.settings = settings


def host() -> tuple[Sessions, Settings]:
    """The session factory and settings of this process; the engine is made on first use."""
    if _host.settings is None:
        raise RuntimeError("engine.jobs.bind(settings) was not called in this process")
    with _host.lock:
        if _host.sessions is None:
            _host.engine = make_engine(_host.settings.database_url, pool_pre_ping=True)
            _host.sessions = make_session_factory(_host.engine)
    return _host.sessions, _host.settings


def after_fork() -> None:
    """A forked pool process must not share its parent's database connections."""
    if _host.engine is not None:
        _host.engine.dispose(close=False)
    _host.engine = _host.sessions = None


# --- the Celery tasks: stable names, ids in, under ten lines --------------------------------------

RETRIED = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (Conflict, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 10,
    "ignore_result": True,
}


@shared_task(name="approval.advance", **RETRIED)
def advance_task(instance_id: int) -> bool:
    return advance(*host(), instance_id)


@shared_task(name="approval.run_service_call", **RETRIED)
def run_service_call_task(call_id: int) -> None:
    run_service_call(*host(), call_id)


@shared_task(name="approval.fire_timer", **RETRIED)
def fire_timer_task(instance_id: int) -> bool:
    return fire_timer(*host(), instance_id)


@shared_task(name="approval.fire_due_timers", **RETRIED)
def fire_due_timers_task() -> int:
    return fire_due_timers(*host())


@shared_task(name="approval.sweep", **RETRIED)
def sweep_task() -> int:
    return sweep(*host())


@shared_task(name="approval.tidy_broker", **RETRIED)
def tidy_broker_task() -> int:
    return tidy_broker(host()[1])


# --- publishers (see dispatch.install) ------------------------------------------------------------


class CeleryPublisher:
    """Sends each piece of work to the broker as the task of its kind."""

    def __init__(self, app: Celery):
        self.app = app

    def __call__(self, work: list[Work]) -> None:
        for item in work:
            self.app.send_task(TASK_NAMES[item.kind], args=[item.id], countdown=item.countdown)


class LocalQueue:
    """Keeps published work in a list; `drain` does it in this process (tests, benchmarks)."""

    def __init__(self) -> None:
        self.work: list[Work] = []

    def __call__(self, work: list[Work]) -> None:
        self.work.extend(work)

    def drain(self, sessions: Sessions, settings: Settings, *, delayed: bool = False) -> int:
        """Do the queued work, and the work it queues, until none is left; how many jobs ran.

        Work with a countdown (a service call's retry after back-off) is dropped unless
        `delayed`: it is the sweeper's, or the test's, to run later.
        """
        done = 0
        while self.work:
            item = self.work.pop(0)
            if item.countdown and not delayed:
                continue
            HANDLERS[item.kind](sessions, settings, item.id)
            done += 1
        return done

"""The Celery application: `celery -A engine.worker worker|beat`, which `approval worker` and
`approval beat` run.

Decision: the app is built from `Settings.from_env()` when Celery first asks for
`engine.worker.app`, so importing this module reads nothing. Every task is `acks_late` with
one message prefetched per process; beat publishes the look for due timers and the sweep, and
keeps no schedule file (several beats may run: the engine fires a timer once whoever asks). A
worker process binds the jobs to its settings and publishes their follow-up work through its
own app; a forked pool process drops the parent's database connections (as superset's
`celery_app` does).
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from engine import dispatch, fault_injection, jobs
from engine.config import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`: a producer in the web, the whole app in a worker."""
    schedule = {
        "fire-due-timers": _every(settings.timer_interval, "approval.fire_due_timers"),
        "sweep": _every(settings.sweep_interval, "approval.sweep"),
    }
    if settings.broker_url.startswith("sqla+"):  # the embedded default's broker on SQLite
        schedule["tidy-broker"] = _every(3600, "approval.tidy_broker")
        # Kombu hands transport options on to create_engine, so the poll is set on the class:
        # a hand-off waits 0.2 s for the worker to look, not a second.
        kombu_sqlalchemy.Transport.polling_interval = 0.2
    app = Celery("approval", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue="approval",
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        enable_utc=True,
        timezone="UTC",
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule=schedule,
    )
    app.approval_settings = settings
    return app


def _every(seconds: float, task: str) -> dict:
    # A look that no worker took before the next one is due is worth nothing: let it expire.
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """`engine.worker.app`, built on first use from the environment (`celery -A` asks)."""
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = make_celery(Settings.from_env())
        _app.set_current()
    return _app


@worker_init.connect
def _worker_starts(sender, **_) -> None:
    settings = sender.app.approval_settings
    jobs.bind(settings)
    fault_injection.install(settings)
    dispatch.install(jobs.CeleryPublisher(sender.app))


@worker_process_init.connect
def _pool_process_starts(**_) -> None:
    jobs.after_fork()

"""Contenders for the race tests, each in a process of its own (`multiprocessing`): what a view
or a worker job does, and nothing else, all started together at a barrier.

`race` completes a task the way the web app does (`defer=True`, publishing to the broker after
commit); `fire` runs the `fire_timer` job. Their settings come with them, so a test can slow
their commits down (the HTTP tests go to real web processes: tests/integration/api.py).
"""

from __future__ import annotations

from engine import fault_injection, jobs, runtime
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from engine.directory import Actor
from engine.errors import Conflict


def complete(settings: Settings, task_id: int, actor: Actor, data: dict) -> None:
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        runtime.complete_task(session, settings, task_id, actor, data, defer=True)


def race(env: dict[str, str], barrier, results, task_id: int, actor: Actor, data: dict) -> None:
    """One of many simultaneous completions of the same task; puts its outcome in `results`."""
    settings = Settings.from_env(env)
    fault_injection.install(settings)  # a slow commit: the transactions surely overlap
    barrier.wait()
    try:
        complete(settings, task_id, actor, data)
        results.put((actor.username, "ok"))
    except Conflict as err:
        results.put((actor.username, f"conflict: {err}"))
    except Exception as err:  # anything else is a failure the test shows
        results.put((actor.username, f"error: {type(err).__name__}: {err}"))


def fire(env: dict[str, str], barrier, results, instance_id: int) -> None:
    """One of many simultaneous `fire_timer` jobs for the same instance (several workers)."""
    settings = Settings.from_env(env)
    fault_injection.install(settings)
    sessions = make_session_factory(make_engine(settings.database_url))
    barrier.wait()
    try:
        results.put("fired" if jobs.fire_timer(sessions, settings, instance_id) else "not due")
    except Conflict:
        results.put("conflict")
    except Exception as err:
        results.put(f"error: {type(err).__name__}: {err}")

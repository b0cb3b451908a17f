"""Stand-ins for web requests in processes of their own: what a view does, and nothing else.

`python -m tests.integration.client TASK_ID USERNAME GROUP JSON` completes a task the way the
web app will (`defer=True`, publishing to the broker after commit) and prints `ok`; the settings
come from the environment, so a test can slow its commit down and kill it in the middle.
`race` is the same request for `multiprocessing`: all start together at a barrier.
"""

from __future__ import annotations

import json
import sys

from engine import dispatch, fault_injection, jobs, runtime, worker
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from engine.directory import Actor
from engine.errors import Conflict


def complete(settings: Settings, task_id: int, actor: Actor, data: dict) -> None:
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        runtime.complete_task(session, settings, task_id, actor, data, defer=True)


def main(argv: list[str]) -> None:
    task_id, username, group, data = argv
    settings = Settings.from_env()
    fault_injection.install(settings)
    dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    complete(settings, int(task_id), Actor(username, frozenset({group})), json.loads(data))
    print("ok", flush=True)


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


if __name__ == "__main__":
    main(sys.argv[1:])

"""Handing instances to jobs: deferred steps, idempotent redelivery, timers fired once, the tasks.

Jobs run here through `LocalQueue`, the very functions the Celery tasks call; the integration
tests run them in real worker processes.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from datetime import timedelta

import pytest
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine import clock, dispatch, jobs, runtime, timers
from engine.config import Settings
from engine.dispatch import ADVANCE, CALL, TIMER, Work
from engine.errors import Conflict, TaskConflict
from tests.factories import (
    APPLICANT,
    MANAGER,
    REVIEWER,
    application,
    audit_problems,
    calls_of,
    deploy_sample,
    engine_data,
    events,
    final,
    instance,
    open_task,
    review,
    task_states,
)


@pytest.fixture
def queue():
    """Published work collects here; `queue.drain(...)` runs it as a worker would."""
    local = jobs.LocalQueue()
    previous = dispatch.install(local)
    yield local
    dispatch.install(previous)


@pytest.fixture
def sample(session_factory, settings):
    with session_factory.begin() as session:
        deploy_sample(session, settings)


def start(session_factory, settings, defer: bool = True) -> int:
    with session_factory.begin() as session:
        return runtime.start(session, settings, "sample_approval", {}, APPLICANT, defer=defer).id


def complete(session_factory, settings, actor, element_id, data, defer: bool = True) -> None:
    task = open_task(session_factory, actor, element_id)
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, actor, data, defer=defer)


def test_a_deferred_start_commits_at_once_and_a_worker_runs_the_steps(
    queue, sample, session_factory, settings
):
    """The applicant sees "processing" (running, no task yet); after the job, the form."""
    instance_id = start(session_factory, settings)
    assert instance(session_factory, instance_id).status == "running"
    assert task_states(session_factory, instance_id) == []
    assert queue.work == [Work(ADVANCE, instance_id)]

    assert queue.drain(session_factory, settings) == 1
    assert instance(session_factory, instance_id).status == "waiting"
    assert task_states(session_factory, instance_id) == [("Task_apply", "ready")]


def test_a_deferred_completion_keeps_the_submission_and_the_worker_moves_on(
    queue, sample, session_factory, settings
):
    """The submission is stored with the click; the pre-check and routing run in jobs after."""
    instance_id = start(session_factory, settings)
    queue.drain(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application())

    row = instance(session_factory, instance_id)
    assert row.status == "running"
    assert task_states(session_factory, instance_id) == [("Task_apply", "completed")]
    assert engine_data(session_factory, settings, instance_id)["amount"] == 80000
    assert calls_of(session_factory, instance_id) == []  # the worker has not looked yet

    assert queue.drain(session_factory, settings) == 2  # the steps, then the pre-check call
    assert [c.status for c in calls_of(session_factory, instance_id)] == ["done"]
    assert task_states(session_factory, instance_id)[-1] == ("Task_review", "ready")
    assert events(session_factory, instance_id) == [
        ("start", "alice"),
        ("complete", "alice"),
        ("service_request", "system"),
        ("service_call", "system"),
    ]


def test_deferred_and_inline_runs_end_the_same_way(queue, sample, session_factory, settings):
    """A whole application through jobs ends as the inline one does: same path, same audit."""
    results = []
    for defer in (False, True):
        instance_id = start(session_factory, settings, defer)
        steps = [
            (APPLICANT, "Task_apply", application()),
            (REVIEWER, "Task_review", review()),
            (MANAGER, "Task_manager", final()),
        ]
        for actor, element_id, data in steps:
            queue.drain(session_factory, settings)  # inline too: service calls are always jobs
            complete(session_factory, settings, actor, element_id, data, defer)
        queue.drain(session_factory, settings)
        row = instance(session_factory, instance_id)
        kinds = [kind for kind, _ in events(session_factory, instance_id)]
        results.append((row.status, task_states(session_factory, instance_id), kinds))
    assert results[0] == results[1]
    assert results[1][0] == "completed"
    assert audit_problems(session_factory, settings) == []


def test_a_redelivered_job_finds_its_work_done_and_does_nothing(
    queue, sample, session_factory, settings
):
    """The same advance and the same call delivered twice: applied once, nothing rewritten."""
    instance_id = start(session_factory, settings)
    queue.drain(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application())
    queue.drain(session_factory, settings)
    before = instance(session_factory, instance_id)
    (call,) = calls_of(session_factory, instance_id)

    assert jobs.advance(session_factory, settings, instance_id) is False
    jobs.run_service_call(session_factory, settings, call.id)
    assert queue.work == []
    after = instance(session_factory, instance_id)
    assert (after.lock_version, after.state) == (before.lock_version, before.state)
    (again,) = calls_of(session_factory, instance_id)
    assert again.attempts == 1
    kinds = [kind for kind, _ in events(session_factory, instance_id)]
    assert kinds.count("service_call") == 1


def test_steps_rolled_back_by_a_crash_run_again_from_the_saved_state(
    queue, sample, session_factory, settings
):
    """A worker dies before commit: the instance is still `running`, and the next job runs it."""
    instance_id = start(session_factory, settings)
    queue.work.clear()
    with session_factory() as session:
        assert runtime.advance_instance(session, settings, instance_id) is True
        session.rollback()  # the process died here: nothing of the steps was committed
    assert instance(session_factory, instance_id).status == "running"
    assert jobs.advance(session_factory, settings, instance_id) is True
    assert task_states(session_factory, instance_id) == [("Task_apply", "ready")]


@pytest.fixture
def in_review(queue, sample, session_factory, settings) -> int:
    """A sample application waiting for its credit review (2-day SLA timer); the instance id."""
    instance_id = start(session_factory, settings)
    queue.drain(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application())
    queue.drain(session_factory, settings)
    return instance_id


def test_beat_queues_one_fire_per_due_instance_and_the_timer_fires_once(
    queue, in_review, session_factory, settings
):
    """Two beats look at the same moment: two jobs, one firing; the second finds nothing due."""
    assert jobs.fire_due_timers(session_factory, settings) == 0
    clock.travel(timedelta(days=3))
    assert jobs.fire_due_timers(session_factory, settings) == 1
    assert jobs.fire_due_timers(session_factory, settings) == 1
    assert queue.work == [Work(TIMER, in_review), Work(TIMER, in_review)]
    assert queue.drain(session_factory, settings) == 2
    kinds = [kind for kind, _ in events(session_factory, in_review)]
    assert kinds.count("timer") == 1
    assert jobs.fire_due_timers(session_factory, settings) == 0


def test_two_concurrent_firings_of_one_timer_let_one_commit(in_review, session_factory, settings):
    """Both read the timer as due; the version check lets one commit, the other conflicts."""
    if session_factory.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL's row locks")
    clock.travel(timedelta(days=3))
    first = session_factory()
    assert timers.fire(first, settings, in_review) is True  # flushed, not committed
    outcome: list[object] = []

    def second() -> None:
        try:
            with session_factory.begin() as session:
                outcome.append(timers.fire(session, settings, in_review))
        except TaskConflict as err:
            outcome.append(err)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)  # it read the timer as due and now waits for the first one's row lock
    first.commit()
    first.close()
    thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], TaskConflict)
    kinds = [kind for kind, _ in events(session_factory, in_review)]
    assert kinds.count("timer") == 1


def test_a_call_retried_after_back_off_waits_for_its_delay(
    queue, session_factory, settings, monkeypatch
):
    """`drain` leaves delayed work to later; `drain(delayed=True)` runs it."""
    from tests.factories import deploy_scenario, register_operators

    switch = register_operators(monkeypatch)
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "flaky_service")
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, "flaky_service", {}, APPLICANT).id
    assert queue.drain(session_factory, settings) == 1  # fails, queued again with a countdown
    assert switch["calls"] == 1
    switch["down"] = False
    assert queue.drain(session_factory, settings, delayed=True) == 0  # the delayed one was dropped
    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "pending"
    jobs.run_service_call(session_factory, settings, call.id)
    assert instance(session_factory, instance_id).status == "completed"


def test_a_deferred_retry_resets_the_failed_call_and_a_worker_finishes(
    queue, session_factory, settings, monkeypatch
):
    """After the service is mended, a retry hands the instance and its call back to workers."""
    from engine.directory import SYSTEM_ACTOR
    from tests.factories import deploy_scenario, register_operators

    switch = register_operators(monkeypatch)
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "flaky_service")
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, "flaky_service", {}, APPLICANT).id
    while instance(session_factory, instance_id).status != "error":
        queue.drain(session_factory, settings, delayed=True)  # five tries, then it gives up
    switch["down"] = False

    with session_factory.begin() as session:
        runtime.retry(session, settings, instance_id, SYSTEM_ACTOR, defer=True)
    (call,) = calls_of(session_factory, instance_id)
    assert (instance(session_factory, instance_id).status, call.status) == ("running", "pending")
    assert sorted(queue.work, key=lambda w: w.kind) == [
        Work(ADVANCE, instance_id),
        Work(CALL, call.id),
    ]
    queue.drain(session_factory, settings)
    assert instance(session_factory, instance_id).status == "completed"


# --- the Celery side -----------------------------------------------------------------------------

TASKS = {
    "approval.advance": jobs.advance_task,
    "approval.run_service_call": jobs.run_service_call_task,
    "approval.fire_timer": jobs.fire_timer_task,
    "approval.fire_due_timers": jobs.fire_due_timers_task,
    "approval.sweep": jobs.sweep_task,
    "approval.tidy_broker": jobs.tidy_broker_task,
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_has_its_stable_name_is_acked_late_and_retries_on_conflict(name):
    """Names never change (queued messages name them); late ack; short; retried with back-off."""
    task = TASKS[name]
    assert task.name == name
    assert task.acks_late and task.reject_on_worker_lost
    assert {Conflict, OperationalError} <= set(task.autoretry_for) and task.retry_backoff
    assert len(inspect.getsource(task.run).splitlines()) <= 10


def test_a_task_that_lost_a_race_is_retried(settings, monkeypatch):
    """A conflict is not a failure: the task runs again and then succeeds."""
    attempts = []

    def advance(sessions, settings, instance_id):
        attempts.append(instance_id)
        if len(attempts) == 1:
            raise TaskConflict("someone else changed this application")
        return True

    monkeypatch.setattr(jobs, "advance", advance)
    jobs.bind(settings)
    try:
        result = jobs.advance_task.apply(args=[5])
    finally:
        jobs.bind(None)
    assert result.get() is True
    assert attempts == [5, 5]


def test_the_celery_publisher_sends_each_kind_to_its_task():
    """Work becomes `send_task` by stable name, with the id and any countdown."""
    sent = []

    class App:
        def send_task(self, name, args, countdown):
            sent.append((name, args, countdown))

    jobs.CeleryPublisher(App())([Work(ADVANCE, 1), Work(CALL, 2, 4.0), Work(TIMER, 3)])
    assert sent == [
        ("approval.advance", [1], None),
        ("approval.run_service_call", [2], 4.0),
        ("approval.fire_timer", [3], None),
    ]


def test_tidying_the_sqlite_broker_deletes_only_old_consumed_messages(tmp_path):
    """Kombu's SQL transport keeps consumed messages forever; an hour after, they go."""
    settings = Settings.from_env({"APPROVAL_INSTANCE_DIR": str(tmp_path)})
    with Connection(settings.broker_url) as conn:
        queue = conn.SimpleQueue("approval")
        for n in range(3):
            queue.put({"n": n})
        queue.get(timeout=1).ack()
        queue.get(timeout=1).ack()
        queue.close()
    assert jobs.tidy_broker(settings) == 0  # consumed just now: kept for an hour
    with Connection(settings.broker_url) as conn:
        conn.default_channel.session.execute(
            text("UPDATE kombu_message SET timestamp = '2000-01-01' WHERE visible = 0")
        )
        conn.default_channel.session.commit()
    assert jobs.tidy_broker(settings) == 2
    with Connection(settings.broker_url) as conn:
        assert conn.SimpleQueue("approval").get(timeout=1).payload == {"n": 2}


def test_a_step_that_crashes_with_a_bug_stops_the_instance_instead_of_looping(
    queue, sample, session_factory, settings, monkeypatch
):
    """Not a diagram error but a bug: the application shows the error, and no sweep runs it
    again and again; `retry` runs it once the bug is fixed."""
    instance_id = start(session_factory, settings)

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runtime, "advance", broken)
    assert queue.drain(session_factory, settings) == 1
    row = instance(session_factory, instance_id)
    assert row.status == "error" and "RuntimeError: disk on fire" in row.error_message
    assert [k for k, _ in events(session_factory, instance_id)] == ["start", "error"]
    with session_factory.begin() as session:
        later = dataclasses.replace(settings, sweep_after=0)
        assert dispatch.sweep(session, later) == 0
    monkeypatch.undo()
    with session_factory.begin() as session:
        runtime.retry(session, settings, instance_id, APPLICANT)
    assert task_states(session_factory, instance_id) == [("Task_apply", "ready")]
    assert audit_problems(session_factory, settings) == []


def test_a_lost_race_is_not_taken_for_a_bug(sample, session_factory, settings, monkeypatch):
    """A conflict propagates for Celery to retry; the instance keeps running."""
    instance_id = start(session_factory, settings, defer=True)

    def racing(*_args):
        raise Conflict("someone else changed it")

    monkeypatch.setattr(runtime, "advance", racing)
    with pytest.raises(Conflict):
        jobs.advance(session_factory, settings, instance_id)
    assert instance(session_factory, instance_id).status == "running"

"""Work is published after commit, never after a rollback, and the sweeper finds what was lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from engine import clock, dispatch, runtime, service_calls
from engine.dispatch import ADVANCE, CALL, Work
from tests.factories import (
    APPLICANT,
    application,
    calls_of,
    deploy_sample,
    deploy_scenario,
    instance,
    open_task,
    register_operators,
)


@pytest.fixture
def published():
    """Every batch of work published in this test, in order (a recording publisher)."""
    batches: list[list[Work]] = []
    previous = dispatch.install(batches.append)
    yield batches
    dispatch.install(previous)


@pytest.fixture
def sample(session_factory, settings):
    with session_factory.begin() as session:
        deploy_sample(session, settings)


def test_work_is_published_only_once_the_transaction_commits(published, session_factory):
    """Nothing reaches the broker while the transaction is open; all of it right after commit."""
    with session_factory.begin() as session:
        dispatch.queue(session, ADVANCE, 7)
        dispatch.queue(session, CALL, 3, countdown=4.0)
        dispatch.queue(session, ADVANCE, 7)  # the same job twice in one transaction: sent once
        assert published == []
        assert dispatch.queued(session) == [Work(ADVANCE, 7), Work(CALL, 3, 4.0)]
    assert published == [[Work(ADVANCE, 7), Work(CALL, 3, 4.0)]]


def test_a_rollback_drops_the_work_even_before_any_sql(published, session_factory):
    """A request that fails after queueing, with or without SQL sent, publishes nothing."""
    with session_factory() as session:
        dispatch.queue(session, ADVANCE, 1)
        session.execute(text("SELECT 1"))
        session.rollback()
        dispatch.queue(session, ADVANCE, 2)
        session.rollback()
        session.commit()
    assert published == []


def test_a_savepoint_neither_publishes_early_nor_drops_the_outer_work(published, session_factory):
    """Released or rolled back, a savepoint leaves the outer transaction's work to its commit."""
    with session_factory.begin() as session:
        dispatch.queue(session, ADVANCE, 1)
        with session.begin_nested():
            dispatch.queue(session, ADVANCE, 2)
        assert published == []
        with pytest.raises(ZeroDivisionError), session.begin_nested():
            dispatch.queue(session, ADVANCE, 2)
            raise ZeroDivisionError
    assert published == [[Work(ADVANCE, 1), Work(ADVANCE, 2)]]


def test_a_broker_that_is_down_does_not_undo_the_commit(session_factory, sample, settings):
    """The publisher fails; the application is stored all the same (the sweeper sends it later)."""

    def broken(work):
        raise ConnectionError("broker down")

    previous = dispatch.install(broken)
    try:
        with session_factory.begin() as session:
            instance_id = runtime.start(session, settings, "sample_approval", {}, APPLICANT).id
    finally:
        dispatch.install(previous)
    assert instance(session_factory, instance_id).status == "waiting"


def test_a_completed_task_publishes_the_service_call_it_created(
    published, sample, session_factory, settings
):
    """The applicant's submission creates the pre-check call, and its job is published."""
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, "sample_approval", {}, APPLICANT).id
    assert published == []  # a user task waits: nothing for a worker to do
    task = open_task(session_factory, APPLICANT, "Task_apply")
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, APPLICANT, application())
    (call,) = calls_of(session_factory, instance_id)
    assert published == [[Work(CALL, call.id)]]


def test_a_deferred_start_publishes_the_instance_for_a_worker(
    published, sample, session_factory, settings
):
    """With `defer`, the start commits as `running` and the instance is handed to a worker."""
    with session_factory.begin() as session:
        instance_id = runtime.start(
            session, settings, "sample_approval", {}, APPLICANT, defer=True
        ).id
    assert instance(session_factory, instance_id).status == "running"
    assert published == [[Work(ADVANCE, instance_id)]]


def test_a_retry_after_back_off_is_published_with_its_delay(
    published, session_factory, settings, monkeypatch
):
    """A failing operator's call is published again with the back-off as countdown."""
    register_operators(monkeypatch)
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "flaky_service")
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, "flaky_service", {}, APPLICANT).id
    (call,) = calls_of(session_factory, instance_id)
    published.clear()
    service_calls.run_call(session_factory, settings, call.id)
    assert published == [[Work(CALL, call.id, countdown=service_calls.BACKOFF_SECONDS * 2)]]


def _lost_start(session_factory, settings) -> int:
    """A deferred start whose message was lost (no publisher installed)."""
    previous = dispatch.install(None)
    try:
        with session_factory.begin() as session:
            return runtime.start(session, settings, "sample_approval", {}, APPLICANT, defer=True).id
    finally:
        dispatch.install(previous)


def _sweep(session_factory, settings) -> list[Work]:
    with session_factory.begin() as session:
        dispatch.sweep(session, settings)
        return dispatch.queued(session)


def test_the_sweeper_publishes_again_an_instance_left_running(sample, session_factory, settings):
    """Lost after commit: found after `sweep_after`, then not again before another interval."""
    instance_id = _lost_start(session_factory, settings)
    before = instance(session_factory, instance_id).lock_version
    assert _sweep(session_factory, settings) == []  # young: its job may still be in the queue
    clock.travel(timedelta(seconds=settings.sweep_after + 1))
    assert _sweep(session_factory, settings) == [Work(ADVANCE, instance_id)]
    assert _sweep(session_factory, settings) == []  # stamped: not flooded with copies
    clock.travel(timedelta(seconds=settings.sweep_after + 1))
    assert _sweep(session_factory, settings) == [Work(ADVANCE, instance_id)]
    assert instance(session_factory, instance_id).lock_version == before  # never a conflict


def test_the_sweeper_publishes_again_a_pending_call_but_not_a_later_retry(
    session_factory, settings, monkeypatch
):
    """A lost call job is found; a call waiting out its back-off is left until it is due."""
    register_operators(monkeypatch)
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "flaky_service")
    previous = dispatch.install(None)
    try:
        with session_factory.begin() as session:
            instance_id = runtime.start(session, settings, "flaky_service", {}, APPLICANT).id
    finally:
        dispatch.install(previous)
    (call,) = calls_of(session_factory, instance_id)
    clock.travel(timedelta(seconds=settings.sweep_after + 1))
    assert _sweep(session_factory, settings) == [Work(CALL, call.id)]

    service_calls.run_call(session_factory, settings, call.id)  # fails: retry after 4 s
    clock.travel(timedelta(seconds=settings.sweep_after - 1))
    assert _sweep(session_factory, settings) == []
    clock.travel(timedelta(seconds=10))
    assert _sweep(session_factory, settings) == [Work(CALL, call.id)]


def test_the_sweeper_leaves_waiting_and_completed_work_alone(sample, session_factory, settings):
    """An application waiting for a person has nothing lost: the sweeper sends nothing."""
    with session_factory.begin() as session:
        runtime.start(session, settings, "sample_approval", {}, APPLICANT)
    clock.travel(timedelta(days=1))
    assert _sweep(session_factory, settings) == []

"""Timers fire when due, from the indexed due time, each in its own transaction after a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import clock, inbox, runtime, service_calls, timers
from engine.errors import Conflict, TaskConflict
from tests.factories import (
    APPLICANT,
    REVIEWER,
    SUPERVISOR,
    application,
    audit_problems,
    calls_of,
    complete,
    deploy_sample,
    deploy_scenario,
    engine_data,
    event_data,
    events,
    instance,
    open_task,
    register_operators,
    review,
    start,
    task_states,
)


@pytest.fixture
def in_review(session_factory, settings) -> int:
    """A sample application waiting for its credit review (2-day SLA); the instance id."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
    instance_id = start(session_factory, settings, "sample_approval")
    complete(session_factory, settings, APPLICANT, "Task_apply", application())
    service_calls.run_due(session_factory, settings)
    return instance_id


def test_a_timer_that_is_not_due_does_nothing(in_review, session_factory, settings):
    """A day into a 2-day SLA the scheduler finds nothing and touches nothing."""
    before = instance(session_factory, in_review)
    clock.travel(timedelta(days=1))
    assert timers.advance_due(session_factory, settings) == 0
    with session_factory.begin() as session:
        assert timers.fire(session, settings, in_review) is False
    after = instance(session_factory, in_review)
    assert (after.lock_version, after.state) == (before.lock_version, before.state)
    assert "timer" not in [kind for kind, _ in events(session_factory, in_review)]


def test_the_sla_reminder_fires_and_the_review_stays_open(in_review, session_factory, settings):
    """After 3 days the non-interrupting SLA timer runs its reminder; the reviewer still decides."""
    due = instance(session_factory, in_review).next_due_at
    assert due is not None
    with session_factory.begin() as session:
        inbox.claim(
            session, settings, open_task(session_factory, REVIEWER, "Task_review").id, REVIEWER
        )

    clock.travel(timedelta(days=3))
    assert timers.advance_due(session_factory, settings) == 1
    assert event_data(session_factory, in_review, "timer") == [{"due": due.isoformat()}]
    assert engine_data(session_factory, settings, in_review)["reminder"] == {
        "task": "Task_review",
        "overdue_days": 2,
    }
    row = instance(session_factory, in_review)
    assert (row.status, row.next_due_at) == ("waiting", None)
    assert task_states(session_factory, in_review)[-1] == ("Task_review", "claimed")
    assert timers.advance_due(session_factory, settings) == 0  # fired once, not again

    complete(session_factory, settings, REVIEWER, "Task_review", review("reject"))
    assert instance(session_factory, in_review).status == "completed"
    assert audit_problems(session_factory, settings) == []


def test_an_interrupting_timer_takes_the_task_away_and_escalates(session_factory, settings):
    """An hour without a review: the claimed review is cancelled and the supervisor gets it."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "interrupting_timer")
    instance_id = start(session_factory, settings, "interrupting_timer")
    review_task = open_task(session_factory, REVIEWER, "Task_review")
    assert review_task.due_at == instance(session_factory, instance_id).next_due_at
    with session_factory.begin() as session:
        inbox.claim(session, settings, review_task.id, REVIEWER)

    clock.travel(timedelta(hours=2))
    assert timers.advance_due(session_factory, settings) == 1
    assert task_states(session_factory, instance_id) == [
        ("Task_review", "cancelled"),
        ("Task_escalated", "ready"),
    ]
    with session_factory.begin() as session, pytest.raises(TaskConflict, match="cancelled"):
        runtime.complete_task(session, settings, review_task.id, REVIEWER, {})
    complete(session_factory, settings, SUPERVISOR, "Task_escalated", {})
    assert instance(session_factory, instance_id).status == "completed"
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_escalated"}]


def test_an_intermediate_timer_waits_then_the_process_continues(session_factory, settings):
    """A cooling-off hour: no task before it has passed, the applicant's task after."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "intermediate_timer")
    started = clock.now()
    instance_id = start(session_factory, settings, "intermediate_timer")
    row = instance(session_factory, instance_id)
    assert row.status == "waiting"
    assert started + timedelta(hours=1) <= row.next_due_at <= clock.now() + timedelta(hours=1)
    assert task_states(session_factory, instance_id) == []

    clock.travel(timedelta(minutes=30))
    assert timers.advance_due(session_factory, settings) == 0
    clock.travel(timedelta(minutes=31))
    assert timers.advance_due(session_factory, settings) == 1
    assert task_states(session_factory, instance_id) == [("Task_confirm", "ready")]
    assert instance(session_factory, instance_id).next_due_at is None
    complete(session_factory, settings, APPLICANT, "Task_confirm", {})
    assert instance(session_factory, instance_id).status == "completed"


def test_a_service_call_not_answered_in_time_is_cancelled(session_factory, settings, monkeypatch):
    """The deadline on a waiting call ends the process; the late answer is refused."""
    register_operators(monkeypatch)
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "service_timeout")
    instance_id = start(session_factory, settings, "service_timeout")
    service_calls.run_due(session_factory, settings)
    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "waiting"

    clock.travel(timedelta(hours=2))
    assert timers.advance_due(session_factory, settings) == 1
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_timed_out"}]
    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "cancelled"
    with session_factory.begin() as session, pytest.raises(Conflict, match="cancelled"):
        service_calls.complete_later(session, settings, call.id, {"score": 1})

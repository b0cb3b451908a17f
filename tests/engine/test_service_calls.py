"""Service calls run outside the engine step: waiting, retrying, giving up, and answering once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import clock, operators, runtime, service_calls
from engine.directory import SYSTEM_ACTOR
from engine.errors import Conflict
from tests.factories import (
    APPLICANT,
    audit_problems,
    calls_of,
    deploy_scenario,
    engine_data,
    event_data,
    events,
    instance,
    open_task,
    register_operators,
    task_states,
)

DOWN = "the service `test.flaky` failed: the scoring service is down"


@pytest.fixture
def switch(monkeypatch) -> dict:
    """The test operators, registered before anything is deployed."""
    return register_operators(monkeypatch)


def start(session_factory, settings, key: str) -> int:
    with session_factory.begin() as session:
        deploy_scenario(session, settings, key)
    with session_factory.begin() as session:
        return runtime.start(session, settings, key, {}, APPLICANT).id


def kinds(session_factory, instance_id: int) -> list[str]:
    return [kind for kind, _ in events(session_factory, instance_id)]


def test_a_call_answered_later_does_not_hold_up_the_other_branch(switch, session_factory, settings):
    """While the bureau has not answered, the applicant's task is open; the answer finishes it."""
    instance_id = start(session_factory, settings, "parallel_service")
    assert task_states(session_factory, instance_id) == [("Task_note", "ready")]
    assert service_calls.run_due(session_factory, settings) == 1
    (call,) = calls_of(session_factory, instance_id)
    assert (call.status, call.params) == ("waiting", {"who": "applicant"})

    task = open_task(session_factory, APPLICANT, "Task_note")
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, APPLICANT, {})
    assert instance(session_factory, instance_id).status == "waiting"  # the join needs the answer
    assert service_calls.run_due(session_factory, settings) == 0  # waiting is not re-run
    with session_factory.begin() as session:
        service_calls.complete_later(session, settings, call.id, {"score": 720})

    assert instance(session_factory, instance_id).status == "completed"
    assert engine_data(session_factory, settings, instance_id)["bureau"] == {"score": 720}
    assert switch["calls"] == 1
    assert kinds(session_factory, instance_id) == [
        "start",
        "service_request",
        "complete",
        "service_call",
        "completed",
    ]
    with session_factory.begin() as session, pytest.raises(Conflict, match="is done"):
        service_calls.complete_later(session, settings, call.id, {"score": 1})
    assert audit_problems(session_factory, settings) == []


def test_a_failing_operator_is_retried_with_back_off_then_gives_up(
    switch, session_factory, settings
):
    """Five tries with growing pauses, each recorded; then the instance shows the error."""
    instance_id = start(session_factory, settings, "flaky_service")
    assert service_calls.run_due(session_factory, settings) == 1
    (call,) = calls_of(session_factory, instance_id)
    assert (call.status, call.attempts, call.error) == ("pending", 1, "the scoring service is down")
    assert call.next_attempt_at > clock.now()
    assert service_calls.run_due(session_factory, settings) == 0  # not before its back-off
    pauses = []
    while call.status == "pending":
        pauses.append(call.next_attempt_at - clock.now())
        clock.travel(pauses[-1] + timedelta(milliseconds=1))
        service_calls.run_due(session_factory, settings)
        (call,) = calls_of(session_factory, instance_id)

    assert (call.status, call.attempts, switch["calls"]) == ("failed", 5, 5)
    assert [round(p.total_seconds()) for p in pauses] == [4, 8, 16, 32]
    row = instance(session_factory, instance_id)
    assert (row.status, row.error_task, row.error_message) == ("error", "Task_score", DOWN)
    assert kinds(session_factory, instance_id)[1:] == ["service_request"] + [
        "service_retry"
    ] * 4 + ["error"]
    assert [d["attempt"] for d in event_data(session_factory, instance_id, "service_retry")] == [
        1,
        2,
        3,
        4,
    ]
    assert audit_problems(session_factory, settings) == []


def test_once_the_service_is_back_a_retry_completes_the_instance(switch, session_factory, settings):
    """The cause was outside the diagram: fix it, retry, and the call runs afresh and succeeds."""
    instance_id = start(session_factory, settings, "flaky_service")
    give_up(session_factory, settings, instance_id)
    switch["down"] = False
    with session_factory.begin() as session:
        assert runtime.retry(session, settings, instance_id, SYSTEM_ACTOR).status == "waiting"
    (call,) = calls_of(session_factory, instance_id)
    assert (call.status, call.attempts) == ("pending", 0)
    assert service_calls.run_due(session_factory, settings) == 1
    row = instance(session_factory, instance_id)
    assert (row.status, row.error_message) == ("completed", None)
    assert engine_data(session_factory, settings, instance_id)["score"] == {"value": 7}
    assert kinds(session_factory, instance_id)[-4:] == [
        "error",
        "retry",
        "service_call",
        "completed",
    ]


def give_up(session_factory, settings, instance_id: int) -> None:
    """Run the flaky call until its operator gives up."""
    for _ in range(service_calls.MAX_ATTEMPTS):
        service_calls.run_due(session_factory, settings)
        clock.travel(timedelta(minutes=10))
    assert instance(session_factory, instance_id).status == "error"


def test_an_answer_for_one_branch_does_not_clear_the_error_of_another(
    switch, session_factory, settings
):
    """The bureau answers after the scoring gave up: kept, but the instance stays in error."""
    instance_id = start(session_factory, settings, "parallel_calls")
    give_up(session_factory, settings, instance_id)
    bureau = next(c for c in calls_of(session_factory, instance_id) if c.operator == "test.later")
    with session_factory.begin() as session:
        service_calls.complete_later(session, settings, bureau.id, {"score": 650})
    row = instance(session_factory, instance_id)
    assert (row.status, row.error_message) == ("error", DOWN)

    switch["down"] = False
    with session_factory.begin() as session:
        runtime.retry(session, settings, instance_id, SYSTEM_ACTOR)
    service_calls.run_due(session_factory, settings)
    assert instance(session_factory, instance_id).status == "completed"
    data = engine_data(session_factory, settings, instance_id)
    assert (data["bureau"], data["score"]) == ({"score": 650}, {"value": 7})


def test_a_redelivered_outcome_is_applied_only_once(switch, session_factory, settings):
    """A worker that applies the same answer twice completes the task once."""
    switch["down"] = False
    instance_id = start(session_factory, settings, "flaky_service")
    (call,) = calls_of(session_factory, instance_id)
    with session_factory() as session:
        info = service_calls.call_info(session, settings, call)
    outcome = service_calls.invoke(call, info)
    for _ in range(2):
        with session_factory.begin() as session:
            service_calls.apply(session, settings, call.id, outcome)
    service_calls.run_call(session_factory, settings, call.id)  # and a redelivered job

    (call,) = calls_of(session_factory, instance_id)
    assert (call.status, call.attempts, switch["calls"]) == ("done", 1, 1)
    assert kinds(session_factory, instance_id).count("service_call") == 1
    assert instance(session_factory, instance_id).status == "completed"


def test_an_operator_bug_is_not_retried(switch, session_factory, settings, monkeypatch):
    """An unexpected exception stops the instance at once, naming the exception."""

    def broken(params, call):
        raise KeyError("customer_id")

    instance_id = start(session_factory, settings, "flaky_service")
    monkeypatch.setitem(operators._REGISTRY, "test.flaky", broken)
    service_calls.run_due(session_factory, settings)
    row = instance(session_factory, instance_id)
    assert (row.status, row.error_message) == (
        "error",
        "the service `test.flaky` failed: KeyError: 'customer_id'",
    )
    assert calls_of(session_factory, instance_id)[0].attempts == 1


def test_an_operator_removed_after_deploy_stops_the_instance(
    switch, session_factory, settings, monkeypatch
):
    """A diagram naming an operator this installation no longer has says so."""
    instance_id = start(session_factory, settings, "flaky_service")
    monkeypatch.delitem(operators._REGISTRY, "test.flaky")
    service_calls.run_due(session_factory, settings)
    assert instance(session_factory, instance_id).error_message == (
        "the service `test.flaky` failed: the operator `test.flaky` is not installed"
    )


def test_an_answer_that_lost_a_race_is_applied_again_without_calling_twice(
    switch, session_factory, settings, monkeypatch
):
    """A person wrote to the instance while the answer was being saved: saved on the next try."""
    switch["down"] = False
    instance_id = start(session_factory, settings, "flaky_service")
    real_apply, lost = service_calls.apply, []

    def apply_losing_once(session, settings, call_id, outcome):
        if not lost:
            lost.append(call_id)
            raise Conflict("someone else changed this application at the same moment")
        real_apply(session, settings, call_id, outcome)

    monkeypatch.setattr(service_calls, "apply", apply_losing_once)
    assert service_calls.run_due(session_factory, settings) == 1
    assert (lost, switch["calls"]) == ([calls_of(session_factory, instance_id)[0].id], 1)
    assert instance(session_factory, instance_id).status == "completed"

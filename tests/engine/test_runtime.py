"""Running applications through the engine API, one transaction per step, read back fresh.

Every step opens a fresh session (`session_factory.begin()`), so each test proves what survives a
restart between the applicant, the worker, the reviewers and the scheduler.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from engine import clock, inbox, runtime, service_calls
from engine.directory import Actor
from engine.errors import Conflict, TaskConflict
from engine.models import HumanTask
from tests.factories import (
    APPLICANT,
    MANAGER,
    REVIEWER,
    SECOND_REVIEWER,
    application,
    audit_problems,
    calls_of,
    complete,
    deploy_folder,
    deploy_sample,
    deploy_scenario,
    engine_data,
    event_data,
    events,
    final,
    human_tasks,
    instance,
    open_task,
    review,
    sample_copy,
    start,
    task_states,
)


@pytest.fixture
def sample(session_factory, settings):
    with session_factory.begin() as session:
        deploy_sample(session, settings)


def apply_and_check(session_factory, settings, amount: int) -> int:
    """Start, fill in the application for `amount`, and let the worker run the pre-check."""
    instance_id = start(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application(amount=amount))
    assert service_calls.run_due(session_factory, settings) == 1
    return instance_id


def test_large_application_is_reviewed_then_approved_by_the_branch_manager(
    sample, session_factory, settings
):
    """Over 50,000: applicant → pre-check → reviewer → branch manager → completed, all recorded."""
    instance_id = start(session_factory, settings)
    assert instance(session_factory, instance_id).status == "waiting"
    assert task_states(session_factory, instance_id) == [("Task_apply", "ready")]
    complete(session_factory, settings, APPLICANT, "Task_apply", application())
    assert [c.status for c in calls_of(session_factory, instance_id)] == ["pending"]

    assert service_calls.run_due(session_factory, settings) == 1
    (call,) = calls_of(session_factory, instance_id)
    assert (call.status, call.result) == ("done", {"complete": True, "missing": []})
    review_task = open_task(session_factory, REVIEWER, "Task_review")
    with session_factory.begin() as session:
        inbox.claim(session, settings, review_task.id, REVIEWER)
    complete(session_factory, settings, REVIEWER, "Task_review", review())
    complete(session_factory, settings, MANAGER, "Task_manager", final())

    row = instance(session_factory, instance_id)
    assert (row.status, row.error_message, row.next_due_at) == ("completed", None, None)
    assert row.completed_at is not None
    rows = human_tasks(session_factory, instance_id)
    assert [(t.element_id, t.state, t.completed_by) for t in rows] == [
        ("Task_apply", "completed", "alice"),
        ("Task_review", "completed", "rui"),
        ("Task_manager", "completed", "meng"),
    ]
    assert [t.submitted for t in rows] == [application(), review(), final()]
    assert events(session_factory, instance_id) == [
        ("start", "alice"),
        ("complete", "alice"),
        ("service_request", "alice"),
        ("service_call", "system"),
        ("claim", "rui"),
        ("complete", "rui"),
        ("complete", "meng"),
        ("completed", "meng"),
    ]
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_final_approved"}]
    assert audit_problems(session_factory, settings) == []


def test_small_application_is_finished_by_the_reviewer_alone(sample, session_factory, settings):
    """Up to 50,000 the review approves it: no task for the branch manager."""
    instance_id = apply_and_check(session_factory, settings, 50000)
    complete(session_factory, settings, REVIEWER, "Task_review", review())
    assert instance(session_factory, instance_id).status == "completed"
    assert task_states(session_factory, instance_id) == [
        ("Task_apply", "completed"),
        ("Task_review", "completed"),
    ]
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_approved"}]
    assert audit_problems(session_factory, settings) == []


def test_service_request_records_the_operator_and_its_parameters(sample, session_factory, settings):
    """The audit trail shows what was asked of which operator, with the applicant's values."""
    instance_id = apply_and_check(session_factory, settings, 80000)
    assert event_data(session_factory, instance_id, "service_request") == [
        {
            "task": "Task_precheck",
            "operator": "checks.required_fields",
            "params": {
                "record": application(),
                "required": ["applicant_name", "amount", "purpose"],
            },
        }
    ]


def test_a_blank_name_fails_the_precheck_and_ends_incomplete(sample, session_factory, settings):
    """A name of spaces passes the form's length rule but not the pre-check: nobody reviews it."""
    instance_id = start(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application(applicant_name="   "))
    service_calls.run_due(session_factory, settings)
    row = instance(session_factory, instance_id)
    assert row.status == "completed"
    assert task_states(session_factory, instance_id) == [("Task_apply", "completed")]
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_incomplete"}]
    (call,) = calls_of(session_factory, instance_id)
    assert call.result == {"complete": False, "missing": ["applicant_name"]}


def test_the_review_task_shows_when_its_sla_runs_out(sample, session_factory, settings):
    """The review's due time is its 2-day SLA timer, the same moment the scheduler watches."""
    before = clock.now()
    instance_id = apply_and_check(session_factory, settings, 80000)
    (apply_row, review_row) = human_tasks(session_factory, instance_id)
    assert apply_row.due_at is None
    assert review_row.due_at == instance(session_factory, instance_id).next_due_at
    assert before + timedelta(days=2) <= review_row.due_at <= clock.now() + timedelta(days=2)


# --- errors ------------------------------------------------------------------------------------


def test_a_gateway_on_missing_data_stops_the_instance_and_says_why(session_factory, settings):
    """The completed task stays completed; the error names the condition and the missing name."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "gateway_error")
    instance_id = start(session_factory, settings, "gateway_error")
    complete(session_factory, settings, APPLICANT, "Task_enter", {"amount": 10})

    row = instance(session_factory, instance_id)
    assert row.status == "error"
    assert row.error_task == "Gateway_score"
    assert row.error_message == (
        "Gateway_score (Good score?): the expression `score > 5` failed: unknown name `score`"
    )
    (task,) = human_tasks(session_factory, instance_id)
    assert (task.state, task.submitted) == ("completed", {"amount": 10})
    assert engine_data(session_factory, settings, instance_id) == {"amount": 10}
    assert [kind for kind, _ in events(session_factory, instance_id)] == [
        "start",
        "complete",
        "error",
    ]
    assert event_data(session_factory, instance_id, "error") == [
        {"task": "Gateway_score", "message": row.error_message}
    ]
    assert audit_problems(session_factory, settings) == []


def test_retrying_without_a_fix_fails_again_cleanly(session_factory, settings):
    """A retry runs the failed step again; with the cause unchanged it records the same error."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "gateway_error")
    instance_id = start(session_factory, settings, "gateway_error")
    complete(session_factory, settings, APPLICANT, "Task_enter", {"amount": 10})
    state = instance(session_factory, instance_id).state
    with session_factory.begin() as session:
        row = runtime.retry(session, settings, instance_id, APPLICANT)
        assert row.status == "error"

    row = instance(session_factory, instance_id)
    assert (row.status, row.state) == ("error", state)
    assert [kind for kind, _ in events(session_factory, instance_id)][-2:] == ["retry", "error"]
    assert task_states(session_factory, instance_id) == [("Task_enter", "completed")]
    assert audit_problems(session_factory, settings) == []


def test_only_an_instance_in_error_can_be_retried(sample, session_factory, settings):
    """Retrying a healthy application is refused and changes nothing."""
    instance_id = start(session_factory, settings)
    with session_factory.begin() as session, pytest.raises(Conflict, match="not in error"):
        runtime.retry(session, settings, instance_id, APPLICANT)
    assert [kind for kind, _ in events(session_factory, instance_id)] == ["start"]


# --- versions ----------------------------------------------------------------------------------

V2_THRESHOLD = (("&lt;= 50000", "&lt;= 100000"), ("&gt; 50000", "&gt; 100000"))


def test_running_applications_finish_on_their_version_while_new_ones_use_the_new(
    sample, session_factory, settings, tmp_path
):
    """After v2 raises the manager threshold, an old 80,000 application still needs the manager."""
    old = start(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application(amount=80000))
    with session_factory.begin() as session:
        deployed = deploy_folder(
            session, settings, sample_copy(tmp_path / "v2", "approval_levels.dmn", *V2_THRESHOLD)
        )
    assert (deployed.version, deployed.created) == (2, True)
    new = start(session_factory, settings)
    complete(session_factory, settings, APPLICANT, "Task_apply", application(amount=80000))
    assert service_calls.run_due(session_factory, settings) == 2

    for instance_id in (old, new):
        task = next(t for t in human_tasks(session_factory, instance_id) if t.state == "ready")
        with session_factory.begin() as session:
            runtime.complete_task(session, settings, task.id, REVIEWER, review())
    assert instance(session_factory, new).status == "completed"
    assert task_states(session_factory, old)[-1] == ("Task_manager", "ready")
    complete(session_factory, settings, MANAGER, "Task_manager", final())
    assert instance(session_factory, old).status == "completed"
    assert instance(session_factory, old).version_uid != instance(session_factory, new).version_uid


def test_deploying_the_old_content_again_rolls_back_new_applications(
    sample, session_factory, settings, tmp_path
):
    """v3 = v1's content again: it says so, and 80,000 goes to the branch manager once more."""
    with session_factory.begin() as session:
        deploy_folder(
            session, settings, sample_copy(tmp_path / "v2", "approval_levels.dmn", *V2_THRESHOLD)
        )
    with session_factory.begin() as session:
        rolled_back = deploy_sample(session, settings)
    assert (rolled_back.version, rolled_back.same_as_version) == (3, 1)
    instance_id = apply_and_check(session_factory, settings, 80000)
    complete(session_factory, settings, REVIEWER, "Task_review", review())
    assert task_states(session_factory, instance_id)[-1] == ("Task_manager", "ready")


# --- two people at once ------------------------------------------------------------------------


def test_when_two_people_submit_the_same_task_the_first_commit_wins(
    sample, session_factory, settings
):
    """The second, working from what it loaded before the first committed, gets TaskConflict."""
    instance_id = apply_and_check(session_factory, settings, 80000)
    task = open_task(session_factory, REVIEWER, "Task_review")
    first, second = session_factory(), session_factory()
    try:
        # Both read the task and the instance before either writes (held: the sessions keep them).
        held = [
            (runtime.load(s, settings, instance_id), s.get(HumanTask, task.id))
            for s in (first, second)
        ]
        assert [row.state for _, row in held] == ["ready", "ready"]
        runtime.complete_task(first, settings, task.id, REVIEWER, review("approve"))
        assert not (first.new or first.dirty)  # all flushed: a lost race never surfaces at commit
        first.commit()
        with pytest.raises(TaskConflict, match="someone else changed this application"):
            runtime.complete_task(second, settings, task.id, SECOND_REVIEWER, review("reject"))
        second.rollback()
    finally:
        first.close()
        second.close()

    (_, review_row, manager_row) = human_tasks(session_factory, instance_id)
    assert (review_row.completed_by, review_row.submitted) == ("rui", review("approve"))
    assert manager_row.element_id == "Task_manager"
    assert [e for e in events(session_factory, instance_id) if e[0] == "complete"] == [
        ("complete", "alice"),
        ("complete", "rui"),
    ]
    assert audit_problems(session_factory, settings) == []


def test_many_simultaneous_submits_of_one_task_leave_exactly_one_winner(
    sample, session_factory, settings
):
    """On PostgreSQL, N threads completing one task at once: one succeeds, the rest conflict."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL's row locks")
    instance_id = apply_and_check(session_factory, settings, 80000)
    task = open_task(session_factory, REVIEWER, "Task_review")
    people = [Actor(f"reviewer{i}", frozenset({"credit_reviewer"})) for i in range(8)]
    barrier = threading.Barrier(len(people))
    outcomes: list[str] = []

    def submit(actor: Actor) -> None:
        try:
            with session_factory() as session:
                runtime.load(session, settings, instance_id)
                barrier.wait()
                runtime.complete_task(session, settings, task.id, actor, review())
                session.commit()
            outcomes.append("ok")
        except TaskConflict:
            outcomes.append("conflict")
        except Exception as err:  # anything else is the bug this test looks for
            outcomes.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=submit, args=(actor,)) for actor in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict"] * (len(people) - 1) + ["ok"]
    completed = [t for t in human_tasks(session_factory, instance_id) if t.state == "completed"]
    assert len(completed) == 2  # the application form and the one winning review
    assert task_states(session_factory, instance_id)[-1] == ("Task_manager", "ready")
    assert audit_problems(session_factory, settings) == []


def test_a_failing_post_script_keeps_the_form_open_and_stops_the_instance(
    session_factory, settings
):
    """Nothing of the submission is kept; once retried, the form can be submitted again."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "post_script_error")
    instance_id = start(session_factory, settings, "post_script_error")
    state = instance(session_factory, instance_id).state
    complete(session_factory, settings, APPLICANT, "Task_enter", {"amount": 10})

    row = instance(session_factory, instance_id)
    assert (row.status, row.error_task, row.state) == ("error", "Task_enter", state)
    assert row.error_message == "Task_enter (Enter the amount): line 1: unknown name `rate`"
    (task,) = human_tasks(session_factory, instance_id)
    assert (task.state, task.submitted) == ("ready", None)
    with session_factory.begin() as session, pytest.raises(Conflict, match="stopped by an error"):
        runtime.complete_task(session, settings, task.id, APPLICANT, {"amount": 10})
    with session_factory.begin() as session:
        assert runtime.retry(session, settings, instance_id, APPLICANT).status == "waiting"
    assert task_states(session_factory, instance_id) == [("Task_enter", "ready")]
    assert [kind for kind, _ in events(session_factory, instance_id)] == ["start", "error", "retry"]


def test_an_application_gets_its_number_when_submitted(sample, session_factory, settings):
    """Starting an application issues a number like SA20261129000001, unique and audited."""
    first = start(session_factory, settings)
    second = start(session_factory, settings)
    numbers = [instance(session_factory, i).reference for i in (first, second)]
    assert all(n.startswith("SA") and len(n) == 16 for n in numbers)
    assert int(numbers[1][-6:]) == int(numbers[0][-6:]) + 1
    assert event_data(session_factory, first, "start")[0]["reference"] == numbers[0]

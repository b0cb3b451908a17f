"""Who sees and may work on which task: groups, claims, releases, and the applicant's own tasks."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest

from engine import clock, inbox, runtime, service_calls
from engine.directory import Actor, add_user
from engine.errors import Forbidden, Invalid, NotFound, TaskConflict
from engine.identifiers import CHINA
from engine.models import HumanTask, ProcessInstance
from tests.factories import (
    APPLICANT,
    MANAGER,
    OTHER_APPLICANT,
    REVIEWER,
    SECOND_REVIEWER,
    application,
    audit_problems,
    deploy_sample,
    events,
    human_tasks,
    open_task,
    review,
)


@pytest.fixture
def review_task(session_factory, settings) -> inbox.TaskView:
    """An application waiting for credit review: its review task."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
        runtime.start(session, settings, "sample_approval", {}, APPLICANT)
    task = open_task(session_factory, APPLICANT, "Task_apply")
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, APPLICANT, application())
    service_calls.run_due(session_factory, settings)
    return open_task(session_factory, REVIEWER, "Task_review")


def claim(session_factory, settings, task_id: int, actor) -> inbox.TaskView:
    with session_factory.begin() as session:
        return inbox.claim(session, settings, task_id, actor)


def inbox_of(session_factory, actor) -> list[str]:
    with session_factory() as session:
        return [t.element_id for t in inbox.open_tasks(session, actor)]


def test_the_application_form_goes_to_the_person_who_started(session_factory, settings):
    """Only the applicant sees and may fill in their own form; to another applicant it does not
    exist (the same answer as an unknown task, so ids cannot be probed)."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
        runtime.start(session, settings, "sample_approval", {}, APPLICANT)
    assert inbox_of(session_factory, APPLICANT) == ["Task_apply"]
    assert inbox_of(session_factory, OTHER_APPLICANT) == []
    task = open_task(session_factory, APPLICANT, "Task_apply")
    assert (task.assignee, task.group_key) == ("alice", None)
    for act in (
        lambda s: runtime.complete_task(s, settings, task.id, OTHER_APPLICANT, application()),
        lambda s: inbox.claim(s, settings, task.id, OTHER_APPLICANT),
    ):
        with (
            session_factory.begin() as session,
            pytest.raises(NotFound, match=f"no task #{task.id}"),
        ):
            act(session)
    with session_factory.begin() as session, pytest.raises(TaskConflict, match="not claimed"):
        inbox.release(session, settings, task.id, APPLICANT)


def test_a_group_task_is_in_every_group_members_inbox_and_nobody_elses(
    review_task, session_factory
):
    """Both credit reviewers see the review; the branch manager and the applicant do not."""
    assert inbox_of(session_factory, REVIEWER) == ["Task_review"]
    assert inbox_of(session_factory, SECOND_REVIEWER) == ["Task_review"]
    assert inbox_of(session_factory, MANAGER) == []
    assert inbox_of(session_factory, APPLICANT) == []


def test_someone_outside_the_group_may_neither_claim_nor_complete(
    review_task, session_factory, settings
):
    """The branch manager, whose group never touched the application, is told the credit review
    does not exist (as for an unknown id), and nothing changes."""
    unknown = f"no task #{review_task.id}"
    with session_factory.begin() as session, pytest.raises(NotFound, match=unknown):
        inbox.claim(session, settings, review_task.id, MANAGER)
    with session_factory.begin() as session, pytest.raises(NotFound, match=unknown):
        runtime.complete_task(session, settings, review_task.id, MANAGER, review())
    task = human_tasks(session_factory, review_task.instance_id)[-1]
    assert (task.state, task.assignee) == ("ready", None)


def test_a_claimed_task_is_off_limits_to_other_reviewers(review_task, session_factory, settings):
    """After rui claims it, rong can neither claim nor complete it and is told who has it."""
    claimed = claim(session_factory, settings, review_task.id, REVIEWER)
    assert (claimed.state, claimed.assignee) == ("claimed", "rui")
    assert inbox_of(session_factory, SECOND_REVIEWER) == []
    assert inbox_of(session_factory, REVIEWER) == ["Task_review"]
    with session_factory.begin() as session, pytest.raises(TaskConflict, match="taken by rui"):
        inbox.claim(session, settings, review_task.id, SECOND_REVIEWER)
    with session_factory.begin() as session, pytest.raises(TaskConflict, match="taken by rui"):
        runtime.complete_task(session, settings, review_task.id, SECOND_REVIEWER, review())
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, review_task.id, REVIEWER, review())
    assert human_tasks(session_factory, review_task.instance_id)[1].completed_by == "rui"


def test_claiming_your_own_task_again_changes_nothing(review_task, session_factory, settings):
    """A double click on "claim" is harmless: one claim in the record."""
    claim(session_factory, settings, review_task.id, REVIEWER)
    claim(session_factory, settings, review_task.id, REVIEWER)
    assert [kind for kind, _ in events(session_factory, review_task.instance_id)].count(
        "claim"
    ) == 1


def test_only_the_claimer_may_release_a_task(review_task, session_factory, settings):
    """rong cannot release rui's claim; rui can, and then rong may take it."""
    claim(session_factory, settings, review_task.id, REVIEWER)
    with session_factory.begin() as session, pytest.raises(Forbidden, match="only the person"):
        inbox.release(session, settings, review_task.id, SECOND_REVIEWER)
    with session_factory.begin() as session:
        released = inbox.release(session, settings, review_task.id, REVIEWER)
    assert (released.state, released.assignee) == ("ready", None)
    assert claim(session_factory, settings, review_task.id, SECOND_REVIEWER).assignee == "rong"
    assert events(session_factory, review_task.instance_id)[-3:] == [
        ("claim", "rui"),
        ("release", "rui"),
        ("claim", "rong"),
    ]
    assert audit_problems(session_factory, settings) == []


def test_an_unclaimed_task_cannot_be_released(review_task, session_factory, settings):
    """Release is only for a claimed task."""
    with session_factory.begin() as session, pytest.raises(TaskConflict, match="not claimed"):
        inbox.release(session, settings, review_task.id, REVIEWER)


def test_a_completed_task_can_no_longer_be_claimed_or_completed(
    review_task, session_factory, settings
):
    """Once done, the task is closed to everyone, including the person who did it."""
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, review_task.id, REVIEWER, review("reject"))
    for act in (
        lambda s: inbox.claim(s, settings, review_task.id, SECOND_REVIEWER),
        lambda s: runtime.complete_task(s, settings, review_task.id, REVIEWER, review()),
    ):
        with session_factory.begin() as session, pytest.raises(TaskConflict, match="already"):
            act(session)
    assert inbox_of(session_factory, REVIEWER) == []


def test_the_instance_task_list_shows_every_task_with_its_state(review_task, session_factory):
    """The history view: the completed form and the open review, oldest first."""
    with session_factory() as session:
        views = inbox.tasks_of_instance(session, review_task.instance_id)
    assert [(v.element_id, v.state, v.bundle_key) for v in views] == [
        ("Task_apply", "completed", "sample_approval"),
        ("Task_review", "ready", "sample_approval"),
    ]
    assert views[1].due_at is not None


def test_reviewer_cannot_approve_two_levels(session_factory, settings, review_task):
    """Whoever decided the review may not also decide the manager level of that application."""
    both = type(REVIEWER)("both", frozenset({"credit_reviewer", "branch_manager"}))
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, review_task.id, both, review())
    manager_task = open_task(session_factory, MANAGER, "Task_manager")
    with session_factory() as session, pytest.raises(Forbidden, match="segregation of duties"):
        inbox.claim(session, settings, manager_task.id, both)
    with session_factory() as session, pytest.raises(Forbidden, match="segregation of duties"):
        runtime.complete_task(
            session, settings, manager_task.id, both, {"final_decision": "approve", "opinion": "ok"}
        )
    claim(session_factory, settings, manager_task.id, MANAGER)  # another person may


def test_staff_cannot_review_their_own_application(session_factory, settings):
    """A reviewer who applied is refused their own application's review, even in the right group."""
    staff = type(REVIEWER)("staff_applicant", frozenset({"credit_reviewer"}))
    with session_factory.begin() as session:
        deploy_sample(session, settings)
        runtime.start(session, settings, "sample_approval", {}, staff)
    own = open_task(session_factory, staff, "Task_apply")
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, own.id, staff, application())
    service_calls.run_due(session_factory, settings)
    task = open_task(session_factory, REVIEWER, "Task_review")
    with session_factory() as session, pytest.raises(Forbidden, match="your own application"):
        inbox.claim(session, settings, task.id, staff)


# --- filters, order, pages; transfer ----------------------------------------------------------


def applications(session_factory, settings, amounts: list[int]) -> list[int]:
    """One sample application per amount, each by its own applicant, waiting for review;
    the review tasks' ids in that order."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
    for n, amount in enumerate(amounts):
        applicant = Actor(f"applicant{n}")
        with session_factory.begin() as session:
            runtime.start(session, settings, "sample_approval", {}, applicant)
        task = open_task(session_factory, applicant, "Task_apply")
        with session_factory.begin() as session:
            runtime.complete_task(session, settings, task.id, applicant, application(amount=amount))
    service_calls.run_due(session_factory, settings)
    with session_factory() as session:
        return [t.id for t in inbox.open_tasks(session, REVIEWER)]


def page_of(session_factory, actor, **query) -> inbox.InboxPage:
    with session_factory() as session:
        return inbox.inbox_page(session, actor, inbox.InboxQuery(**query))


def test_the_instance_row_carries_the_amount_for_the_inbox(session_factory, settings):
    """The application's amount reaches the instance row once its review task is ready, and
    the task view shows it with the number and the applicant."""
    (task_id,) = applications(session_factory, settings, [80000])
    with session_factory() as session:
        (view,) = inbox.open_tasks(session, REVIEWER)
        row = session.get(ProcessInstance, view.instance_id)
    assert row.amount == Decimal("80000") and view.amount == Decimal("80000")
    assert (view.reference, view.applicant) == (row.reference, "applicant0")


def test_the_inbox_filters_by_amount_band_and_grade_and_counts_all_matches(
    session_factory, settings
):
    """An amount band and a grade narrow the list; the total is over every page."""
    ids = applications(session_factory, settings, [20000, 60000, 90000])
    with session_factory.begin() as session:
        session.get(ProcessInstance, session.get(HumanTask, ids[2]).instance_id).risk_grade = "C"
    band = page_of(session_factory, REVIEWER, min_amount=Decimal(50000), max_amount=Decimal(95000))
    assert [t.id for t in band.tasks] == ids[1:] and band.total == 2
    graded = page_of(session_factory, REVIEWER, risk_grade="C")
    assert [t.id for t in graded.tasks] == [ids[2]]
    assert page_of(session_factory, REVIEWER, bundle_key="personal_loan").total == 0
    assert page_of(session_factory, MANAGER).total == 0


def test_the_inbox_sorts_and_pages(session_factory, settings):
    """By amount, largest first, two a page: the pages hold the right tasks; total stays 3."""
    ids = applications(session_factory, settings, [20000, 90000, 60000])
    first = page_of(session_factory, REVIEWER, sort="amount", descending=True, page_size=2)
    second = page_of(session_factory, REVIEWER, sort="amount", descending=True, page_size=2, page=2)
    assert [t.id for t in first.tasks] == [ids[1], ids[2]]
    assert [t.id for t in second.tasks] == [ids[0]]
    assert (first.total, first.pages) == (3, 2)
    oldest = page_of(session_factory, REVIEWER, sort="created")
    assert [t.id for t in oldest.tasks] == ids


def test_the_inbox_finds_overdue_tasks_and_tasks_without_due_time(session_factory, settings):
    """A task due yesterday is overdue; one without a due time is found by "none"."""
    late, open_ended = applications(session_factory, settings, [20000, 30000])
    with session_factory.begin() as session:
        session.get(HumanTask, late).due_at = clock.now() + timedelta(hours=1)
        session.get(HumanTask, open_ended).due_at = None
    assert page_of(session_factory, REVIEWER, due="overdue").total == 0
    clock.travel(timedelta(hours=2))
    assert [t.id for t in page_of(session_factory, REVIEWER, due="overdue").tasks] == [late]
    assert [t.id for t in page_of(session_factory, REVIEWER, due="none").tasks] == [open_ended]


def test_a_bad_inbox_query_is_refused_naming_the_filter(session_factory, settings):
    """An unknown sort, a page 0 and a band upside down are each named."""
    query = inbox.InboxQuery(
        sort="price", page=0, min_amount=Decimal(9), max_amount=Decimal(1), due="soon"
    )
    with session_factory() as session, pytest.raises(Invalid) as refused:
        inbox.inbox_page(session, REVIEWER, query)
    assert [e.field for e in refused.value.errors] == ["due", "sort", "page", "max_amount"]


def test_a_claimed_task_is_transferred_to_a_colleague(session_factory, settings, review_task):
    """rui hands the review to rong: rong's, audited as a transfer from rui to rong."""
    with session_factory.begin() as session:
        add_user(session, "rong", ["credit_reviewer"])
    claim(session_factory, settings, review_task.id, REVIEWER)
    with session_factory.begin() as session:
        moved = inbox.transfer(session, settings, review_task.id, REVIEWER, "rong")
    assert (moved.assignee, moved.state) == ("rong", "claimed")
    assert inbox_of(session_factory, SECOND_REVIEWER) == ["Task_review"]
    assert inbox_of(session_factory, REVIEWER) == []
    assert events(session_factory, review_task.instance_id)[-1] == ("transfer", "rui")
    assert audit_problems(session_factory, settings) == []


def test_a_task_cannot_go_to_someone_outside_its_group(session_factory, settings, review_task):
    """Not to the branch manager (not a reviewer), not to an unknown name, not to oneself;
    the task stays as it was."""
    with session_factory.begin() as session:
        add_user(session, "meng", ["branch_manager"])
        add_user(session, "rui", ["credit_reviewer"])
    claim(session_factory, settings, review_task.id, REVIEWER)
    refusals = [
        ("meng", "not in the group"),
        ("nobody", "not an active user"),
        ("rui", "other than yourself"),
    ]
    for to, reason in refusals:
        with session_factory() as session, pytest.raises(Forbidden, match=reason):
            inbox.transfer(session, settings, review_task.id, REVIEWER, to)
    assert human_tasks(session_factory, review_task.instance_id)[-1].assignee == "rui"


def test_a_reviewer_who_decided_one_level_cannot_receive_the_next(
    session_factory, settings, review_task
):
    """ "both" decided the review; the manager cannot hand them the manager level."""
    with session_factory.begin() as session:
        add_user(session, "both", ["credit_reviewer", "branch_manager"])
        add_user(session, "meng", ["branch_manager"])
    both = Actor("both", frozenset({"credit_reviewer", "branch_manager"}))
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, review_task.id, both, review())
    manager_task = open_task(session_factory, MANAGER, "Task_manager")
    with session_factory() as session, pytest.raises(Forbidden, match="segregation of duties"):
        inbox.transfer(session, settings, manager_task.id, MANAGER, "both")


def test_due_today_means_the_banks_day_in_china(session_factory, settings):
    """A task due at noon China time today is due today; one due tomorrow noon is not."""
    today, tomorrow = applications(session_factory, settings, [20000, 30000])
    midnight = datetime.combine(clock.now().astimezone(CHINA).date(), time.min, CHINA)
    with session_factory.begin() as session:
        session.get(HumanTask, today).due_at = midnight + timedelta(hours=12)
        session.get(HumanTask, tomorrow).due_at = midnight + timedelta(hours=36)
    assert [t.id for t in page_of(session_factory, REVIEWER, due="today").tasks] == [today]

"""The applicant's side: the types on offer, submitting, my applications, withdrawing, and the
applicant's own tasks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import applications, bundles, directory
from engine.directory import Actor
from engine.errors import Conflict, Invalid, NotFound
from engine.models import HumanTask, ServiceCall
from tests.engine.test_personal_loan import application
from tests.process_helpers import Bank

ALICE = Actor("alice", frozenset())
BOB = Actor("bob", frozenset())


@pytest.fixture
def deployed(session, settings):
    bundles.deploy_path(session, settings, settings.processes_dir, "owner")
    directory.add_user(session, "rui", ["credit_reviewer"])


def submit(session, settings, data=None, actor=ALICE, defer=True):
    return applications.submit(
        session, settings, "personal_loan", data or application(), actor, defer=defer
    )


def test_every_shipped_type_starts_with_the_applicants_form(session, deployed):
    """The form is found in the diagram (first user task from the start), for every bundle."""
    offered = {t.key: t.title for t in applications.types(session)}
    assert offered["personal_loan"] == "个人贷款申请 Personal loan application"
    assert set(offered) == {"credit_card", "enterprise_loan", "personal_loan", "sample_approval"}
    form = applications.application_form(session, "personal_loan")
    assert form.path == "forms/personal_loan/apply-schema.json" and "id_number" in form.text


def test_unknown_type_cannot_be_applied_for(session, deployed):
    with pytest.raises(NotFound):
        applications.application_form(session, "lottery")


def test_submit_issues_the_number_and_hands_the_form_to_the_pre_check(session, settings, deployed):
    """Started and the applicant's form completed in one go; the worker does the rest."""
    row = submit(session, settings)
    assert row.reference.startswith("PL") and row.status == "running"
    (task,) = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id))
    assert (task.element_id, task.state, task.completed_by) == ("Task_apply", "completed", "alice")


def test_submit_refuses_data_the_form_does_not_accept(session, settings, deployed):
    with pytest.raises(Invalid) as refused:
        submit(session, settings, application(amount=5, assignee="mallory"))
    assert {e.field for e in refused.value.errors} == {"amount", "assignee"}


def test_my_applications_are_mine_only_newest_first_in_pages(session, settings, deployed):
    first, second, third = (submit(session, settings) for _ in range(3))
    submit(session, settings, actor=BOB)
    page = applications.mine(session, "alice", page=1, per_page=2)
    assert [a.reference for a in page.items] == [third.reference, second.reference]
    assert (page.total, page.pages) == (3, 2)
    assert [a.reference for a in applications.mine(session, "alice", page=2, per_page=2).items] == [
        first.reference
    ]
    assert page.items[0].status == "processing" and page.items[0].withdrawable


def test_withdraw_is_the_applicants_and_closes_what_was_pending(session, settings, deployed):
    """Bob cannot; Alice can, once: cancelled, with its pending pre-check calls closed."""
    row = submit(session, settings, defer=False)
    calls = session.scalars(select(ServiceCall).where(ServiceCall.instance_id == row.id)).all()
    assert calls and {c.status for c in calls} == {"pending"}
    with pytest.raises(NotFound):
        applications.withdraw(session, settings, row.id, BOB)
    assert applications.withdraw(session, settings, row.id, ALICE).status == "cancelled"
    assert {c.status for c in calls} == {"cancelled"}
    with pytest.raises(Conflict, match="already withdrawn"):
        applications.withdraw(session, settings, row.id, ALICE)
    assert not applications.my_application(session, row.id, ALICE).withdrawable


@pytest.mark.parametrize("reviewer", ["claims", "returns"])
def test_withdraw_is_refused_once_a_reviewer_started(
    session_factory, settings, smtp_server, http_stub, reviewer
):
    """A claimed review, or one already decided (sent back for information), stops it."""
    bank = Bank(session_factory, settings, smtp_server, http_stub, ["personal_loan"], terms={})
    instance_id = bank.apply("personal_loan", application())
    if reviewer == "claims":
        bank.claim("rui", "Task_review", instance_id)
    else:
        bank.level("review", "return", opinion="请补充银行流水")
    with session_factory() as session:
        assert not applications.my_application(session, instance_id, ALICE).withdrawable
        with pytest.raises(Conflict, match="reviewer has already started"):
            applications.withdraw(session, bank.settings, instance_id, ALICE)


def test_instructions_are_filled_with_data_and_nothing_is_evaluated():
    text = "批准金额 {{ approved_amount }} 元 {{ 1 + 1 }} {{ x.__class__ }}"
    filled = applications.fill_in(text, {"approved_amount": 80000})
    assert filled == "批准金额 80000 元 {{ 1 + 1 }} {{ x.__class__ }}"

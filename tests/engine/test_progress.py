"""engine.progress: what an applicant or a reviewer reads about where an application stands."""

from __future__ import annotations

import pytest

from engine import progress
from engine.errors import NotFound
from tests.engine.test_personal_loan import KEY, LARGE, SIGNED, application, in_review
from tests.process_helpers import Bank, person


@pytest.fixture
def bank(session_factory, settings, smtp_server, http_stub) -> Bank:
    terms = {"amount": 80000, "term_months": 36}
    return Bank(session_factory, settings, smtp_server, http_stub, [KEY], terms=terms)


def read(bank: Bank, instance_id: int, who: str = "alice", locale: str = "zh"):
    reference = bank.row(instance_id).reference
    with bank.session_factory() as session:
        return progress.of(session, bank.settings, reference, person(who), locale)


def test_an_application_in_review_waits_on_the_credit_reviewers(bank):
    """The current step is the review with its group and SLA; the way there is marked done."""
    instance_id = in_review(bank)
    seen = read(bank, instance_id)
    assert seen.state == "waiting"
    ((step,),) = (seen.current,)
    assert (step.element_id, step.group_key, step.applicants) == (
        "Task_review",
        "credit_reviewer",
        False,
    )
    assert step.name == "人工审核 Credit review" and step.due_at is not None
    assert seen.current_ids == ("Task_review",)
    assert {"StartEvent_submit", "Task_apply", "Task_precheck", "Task_scorecard"} <= set(
        seen.done_ids
    )
    assert "Task_review" not in seen.done_ids
    assert seen.result is None and seen.opinions == ()
    kinds = [event.kind for event in seen.timeline]
    assert kinds[:2] == ["start", "complete"] and "service_call" in kinds
    assert seen.timeline[1].actor_name == "张三" and seen.timeline[1].step.startswith("填写申请")


def test_a_rejection_shows_who_rejected_with_the_reasons_and_suggestions(bank):
    """The reviewer's opinion is a reason; the scorecard adds concrete suggestions."""
    instance_id = in_review(bank)
    bank.level("review", "reject", opinion="收入证明与流水不符")
    seen = read(bank, instance_id)
    assert seen.state == "completed"
    (opinion,) = seen.opinions
    assert (opinion.actor, opinion.actor_name, opinion.decision, opinion.opinion) == (
        "rui",
        "芮审核",
        "reject",
        "收入证明与流水不符",
    )
    result = seen.result
    assert result.declined and result.declined_by == "review"
    assert result.end_id == "End_declined" and result.end_name == "未获批准 Declined"
    assert "收入证明与流水不符" in result.reasons and result.suggestions
    english = read(bank, instance_id, locale="en").result
    assert english.suggestions != result.suggestions and english.suggestions


def test_a_pre_check_decline_lists_the_rules_that_failed(bank):
    """Declined without a person: the hard rule's reason and suggestion are the result."""
    bank.bureau.overdue_accounts = 3
    instance_id = bank.apply(KEY, application())
    result = read(bank, instance_id).result
    assert result.declined and result.declined_by == "pre-check"
    assert any("3 笔逾期" in reason for reason in result.reasons)
    assert "保持 6 个月良好记录后再申请" in "".join(result.suggestions)


def test_an_approved_large_loan_keeps_every_levels_opinion(bank):
    """Countersign, manager and committee: one opinion per level, then the contract is done."""
    instance_id = in_review(bank, **LARGE)
    for name in ("review", "risk", "compliance", "manager", "committee"):
        bank.level(name, opinion=f"{name} 同意", amount=400000, term_months=60)
    waiting = read(bank, instance_id)
    ((step,),) = (waiting.current,)
    assert (step.element_id, step.applicants, waiting.result) == ("Task_sign_contract", True, None)
    bank.decide("alice", "Task_sign_contract", SIGNED)

    seen = read(bank, instance_id)
    assert [(e.element_id, e.decision, e.opinion) for e in seen.opinions] == [
        ("Task_review", "approve", "review 同意"),
        ("Task_risk", "approve", "risk 同意"),
        ("Task_compliance", "approve", "compliance 同意"),
        ("Task_manager", "approve", "manager 同意"),
        ("Task_committee", "approve", "committee 同意"),
    ]
    assert not seen.result.declined and seen.result.end_id == "End_done"
    assert seen.current == () and "End_done" in seen.done_ids


def test_only_the_applicant_and_the_staff_involved_can_read_it(bank):
    """Another applicant or an uninvolved department gets the same answer as a wrong number."""
    instance_id = in_review(bank)
    assert read(bank, instance_id, "rui").reference == bank.row(instance_id).reference
    for outsider in ("bob", "ka"):
        with pytest.raises(NotFound):
            read(bank, instance_id, outsider)
    with bank.session_factory() as session, pytest.raises(NotFound):
        progress.find(session, "PL19990101000001", person("alice"))


def test_the_diagram_is_the_bpmn_of_the_version_the_application_runs_on(bank):
    """The XML holds the main process of the instance's version."""
    instance_id = in_review(bank)
    reference = bank.row(instance_id).reference
    with bank.session_factory() as session:
        xml = progress.diagram(session, reference, person("alice"))
    assert '<bpmn:process id="personal_loan"' in xml and "Task_review" in xml

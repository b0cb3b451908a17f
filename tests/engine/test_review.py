"""What a reviewer's task page shows: the application labelled by its form, documents, the
automatic screening, earlier opinions, the decision form; and who may see it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import review
from engine.errors import NotFound
from engine.models import Document, HumanTask
from tests.process_helpers import Bank, document, person
from tests.process_helpers import loan_application as application

KEY = "personal_loan"


@pytest.fixture
def bank(session_factory, settings, smtp_server, http_stub) -> Bank:
    terms = {"amount": 80000, "term_months": 36}
    return Bank(session_factory, settings, smtp_server, http_stub, [KEY], terms=terms)


def page(bank: Bank, who: str, element_id: str, instance_id: int) -> review.ReviewView:
    with bank.session_factory() as session:
        task_id = _task_id(session, instance_id, element_id)
        return review.task_page(session, bank.settings, task_id, person(who))


def _task_id(session, instance_id: int, element_id: str) -> int:
    return session.scalar(
        select(HumanTask.id)
        .where(HumanTask.instance_id == instance_id, HumanTask.element_id == element_id)
        .order_by(HumanTask.id.desc())
    )


def test_the_amount_and_the_scorecard_grade_reach_the_instance_row(bank):
    """Once screened, the row holds the applied amount and the scorecard's grade."""
    instance_id = bank.apply(KEY, application(amount=120000))
    grade = bank.data(instance_id)["scorecard"]["grade"]
    row = bank.row(instance_id)
    assert (row.amount, row.risk_grade) == (120000, grade)
    assert grade


def test_the_page_shows_the_application_labelled_by_its_form(bank):
    """Titles from the apply form, enum names from its uiSchema, documents left to their own
    list, and the review's decision form."""
    instance_id = bank.apply(KEY, application())
    seen = page(bank, "rui", "Task_review", instance_id)
    answers = {item.label: item.value for item in seen.application}
    assert answers["申请金额（元）Amount (CNY)"] == 80000
    assert answers["用途 Purpose"] == "装修 Renovation"
    assert "documents" not in [item.name for item in seen.application]
    assert seen.form_schema["title"] == "人工审核 Credit review"
    assert seen.form_uischema["ui:order"][0] == "review_decision"
    assert seen.can_act and seen.task.reference == bank.row(instance_id).reference


def test_the_page_shows_the_screening_result(bank):
    """Score, grade and reasons as the scorecard gave them, the bureau's answer, no hard rule."""
    instance_id = bank.apply(KEY, application())
    card = bank.data(instance_id)["scorecard"]
    screening = page(bank, "rui", "Task_review", instance_id).screening
    assert (screening.score, screening.grade) == (card["score"], card["grade"])
    assert screening.reasons == card["reasons"] and screening.reasons
    assert screening.bureau["available"] and screening.bureau["score"] == 760
    assert screening.hard_hits == []


def test_the_page_lists_the_applications_documents(bank):
    """Documents tied to the application, with what a preview needs; others' are not shown."""
    instance_id = bank.apply(KEY, application())
    with bank.session_factory.begin() as session:
        session.add_all(
            [
                Document(owner="alice", instance_id=instance_id, sha256="a" * 64, kind="id_card",
                         name="id.png", content_type="image/png", size=1000),
                Document(owner="bob", instance_id=None, sha256="b" * 64, kind="id_card",
                         name="other.png", content_type="image/png", size=10),
            ]
        )  # fmt: skip
    (shown,) = page(bank, "rui", "Task_review", instance_id).documents
    assert (shown.name, shown.kind, shown.is_image, shown.is_pdf) == (
        "id.png",
        "id_card",
        True,
        False,
    )


def test_the_next_level_sees_earlier_opinions_with_who_and_when(bank):
    """After rui escalates, the supervisor's page shows rui's decision and opinion, named."""
    instance_id = bank.apply(KEY, application())
    bank.level("review", "escalate", opinion="收入证明存疑")
    (opinion,) = page(bank, "su", "Task_review_supervisor", instance_id).opinions
    assert (opinion.task_name, opinion.decided_by) == ("人工审核 Credit review", "rui")
    values = {item.name: item.value for item in opinion.items}
    assert values == {
        "review_decision": "提交主管 Escalate to the supervisor",
        "review_opinion": "收入证明存疑",
    }
    assert opinion.decided_at is not None


def test_a_reviewer_who_decided_the_review_sees_why_they_may_not_decide_the_next_level(bank):
    """shuang (credit reviewer and branch manager) may read the page but not act on it."""
    large = application(amount=400000, term_months=60, monthly_income=40000)
    large["documents"].append(document("asset_proof"))
    instance_id = bank.apply(KEY, large)
    bank.level("review", who="shuang", amount=400000, term_months=60)
    bank.level("risk")
    bank.level("compliance")
    seen = page(bank, "shuang", "Task_manager", instance_id)
    assert not seen.can_act and "segregation of duties" in seen.blocked


def test_someone_outside_the_groups_is_told_the_task_does_not_exist(bank):
    """A risk reviewer and another applicant get NotFound for the credit review."""
    instance_id = bank.apply(KEY, application())
    for outsider in ("feng", "bob"):
        with pytest.raises(NotFound):
            page(bank, outsider, "Task_review", instance_id)
    assert page(bank, "rong", "Task_review", instance_id).can_act  # the group may

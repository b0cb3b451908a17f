"""The personal loan bundle end to end: pre-check, routes, levels, SLAs, feedback, follow-up."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Forbidden, Invalid
from tests.process_helpers import (
    ALICE_MAIL,
    Bank,
    birth_years_ago,
    bundle_copy,
    deploy_copy,
    document,
    field_errors,
    resident_id,
)
from tests.process_helpers import (
    loan_application as application,
)

KEY = "personal_loan"
SIGNED = {"accept_terms": True, "signer_name": "张三", "disbursement_account": "6222020200112233"}
#: 400,000 over 60 months with proof of assets: countersign, branch manager and committee.
LARGE = {
    "amount": 400000,
    "term_months": 60,
    "monthly_income": 40000,
    "documents": [document("id_card"), document("income_proof"), document("asset_proof")],
}


@pytest.fixture
def bank(session_factory, settings, smtp_server, http_stub) -> Bank:
    terms = {"amount": 80000, "term_months": 36}
    return Bank(session_factory, settings, smtp_server, http_stub, [KEY], terms=terms)


def in_review(bank: Bank, **changes: Any) -> int:
    instance_id = bank.apply(KEY, application(**changes))
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]
    return instance_id


def to_committee(bank: Bank) -> int:
    """A large application approved up to the credit committee."""
    instance_id = in_review(bank, **LARGE)
    for name in ("review", "risk", "compliance", "manager"):
        bank.level(name, amount=400000, term_months=60)
    return instance_id


# --- the happy paths ---------------------------------------------------------------------------


def test_a_small_good_application_is_approved_by_the_reviewer_and_signed(bank):
    """80,000 at grade A: one credit review, the terms by mail and SMS, the contract, done."""
    instance_id = in_review(bank)
    bank.level("review", opinion="收入稳定", amount=70000, term_months=24)
    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    bank.decide("alice", "Task_sign_contract", SIGNED)

    assert bank.end(instance_id) == "End_done"
    reference = bank.row(instance_id).reference
    assert reference.startswith("PL")
    assert bank.subjects(ALICE_MAIL) == [
        f"您的个人贷款申请 {reference} 已受理",
        f"您的个人贷款申请 {reference} 已获批准",
        f"个人贷款申请 {reference} 已办结",
    ]
    approved = bank.mails(ALICE_MAIL)[1][1]
    for term in ("批准金额：70000 元", "期限：24 个月", "年利率：3.60%", "审批意见：收入稳定"):
        assert term in approved
    assert "尾号 2233" in bank.mails(ALICE_MAIL)[2][1]
    assert len(bank.sms("13800138000")) == 3
    assert bank.bureau_queries() == [
        {"id_type": "resident_id", "id": application()["id_number"], "name": "张三"}
    ]
    assert [(task, who) for task, _, who in bank.history(instance_id)] == [
        ("Task_apply", "alice"),
        ("Task_review", "rui"),
        ("Task_sign_contract", "alice"),
    ]
    assert bank.audit_problems() == []


def test_a_large_loan_needs_countersign_then_manager_then_committee(bank):
    """400,000: risk and compliance countersign in parallel, then the manager, then any one
    committee member (或签) whose terms are the approved ones."""
    instance_id = in_review(bank, **LARGE)
    bank.level("review", amount=400000, term_months=60)
    assert bank.open(instance_id) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]
    bank.level("compliance", opinion="合规")
    assert bank.open(instance_id) == [("Task_risk", "risk_reviewer")]
    bank.level("risk")
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager", amount=380000, term_months=60)
    assert bank.open(instance_id) == [("Task_committee", "credit_committee")]
    bank.decide("wu", "Task_committee", bank.form("committee", amount=350000, term_months=36))

    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    data = bank.data(instance_id)
    assert (data["approved_amount"], data["approved_term_months"]) == (350000, 36)
    assert data["countersign_opinion"] == "合规 Compliance：合规"
    assert "批准金额：350000 元" in bank.mails(ALICE_MAIL)[-1][1]
    assert bank.history(instance_id)[1:6] == [
        ("Task_review", "completed", "rui"),
        ("Task_risk", "completed", "feng"),
        ("Task_compliance", "completed", "he"),
        ("Task_manager", "completed", "meng"),
        ("Task_committee", "completed", "wu"),
    ]


def test_between_100000_and_300000_the_branch_manager_approves_after_the_review(bank):
    """150,000 at grade A: review, then the branch manager alone (no countersign)."""
    instance_id = in_review(bank, amount=150000, term_months=60)
    bank.level("review", amount=150000, term_months=60)
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager", amount=120000, term_months=60)
    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    assert bank.data(instance_id)["approved_amount"] == 120000


# --- automatic decisions ----------------------------------------------------------------------


#: A grade-E profile: young, low income, a poor bureau score and one overdue account.
WEAK = {
    "id_number": resident_id(birth_years_ago(22)),
    "amount": 30000,
    "monthly_income": 4500,
    "monthly_debt": 1100,
    "employment_years": 0.5,
    "housing": "rented",
}


@pytest.mark.parametrize(
    ("changes", "bureau", "reason", "suggestion"),
    [
        (
            {"id_number": resident_id(birth_years_ago(70))},
            {},
            "申请人超过 65 周岁",
            "可由符合年龄条件的家庭成员申请",
        ),
        (
            {"monthly_income": 5000, "monthly_debt": 1570},
            {},
            "月还款负债比 80.1% 超过上限 50%",
            "建议将申请金额降至 30000 元以内",
        ),
        ({}, {"overdue_accounts": 3}, "征信报告显示 3 笔逾期", "保持 6 个月良好记录后再申请"),
        (WEAK, {"score": 500, "overdue_accounts": 1}, "综合评分未达标：征信评分", "改善信用记录"),
    ],
    ids=["too-old", "debt-to-income", "overdue", "grade-E"],
)
def test_a_failing_pre_check_declines_at_once_with_reasons_and_suggestions(
    bank, changes, bureau, reason, suggestion
):
    """No person sees it; the applicant gets the reasons and concrete suggestions by mail."""
    for name, value in bureau.items():
        setattr(bank.bureau, name, value)
    instance_id = bank.apply(KEY, application(**changes))

    assert bank.end(instance_id) == "End_declined"
    assert [task for task, _, _ in bank.history(instance_id)] == ["Task_apply"]
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.endswith("未获批准")
    assert reason in body and suggestion in body
    assert "未获批准" in bank.sms("13800138000")[-1]


def test_a_blacklisted_applicant_is_declined_with_a_way_to_clear_it(bank):
    """The blacklist is looked up by resident ID; the applicant is told where to clear it up."""
    bank.blacklist("id_number", application()["id_number"])
    instance_id = bank.apply(KEY, application())
    assert bank.end(instance_id) == "End_declined"
    body = bank.mails(ALICE_MAIL)[-1][1]
    assert "申请人命中本行风险名单" in body and "请携带身份证件到网点或致电客服核实" in body


def test_a_second_application_while_one_is_open_is_declined_naming_the_first(bank):
    """One personal loan at a time: the second is declined and points to the first."""
    first = in_review(bank)
    second = bank.apply(KEY, application(amount=20000))
    assert bank.end(second) == "End_declined"
    assert (
        f"您已有一笔在审的个人贷款申请 {bank.row(first).reference}" in bank.mails(ALICE_MAIL)[-1][1]
    )
    assert bank.open(first) == [("Task_review", "credit_reviewer")]


def test_an_english_speaking_applicant_reads_the_decline_in_english(bank):
    """The texts come in the applicant's language, reasons and suggestions included."""
    bank.set_locale("alice", "en")
    bank.bureau.overdue_accounts = 2
    instance_id = bank.apply(KEY, application())
    assert bank.end(instance_id) == "End_declined"
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.startswith("Your personal loan application PL") and "declined" in subject
    assert "The credit report shows 2 overdue accounts" in body
    assert "keep a clean record for 6 months" in body


# --- returns for more information (退回补件) -----------------------------------------------------


def test_missing_information_goes_back_to_the_applicant_and_resumes_after_resubmission(bank):
    """A blank employer: the applicant is asked for it, resubmits, and a reviewer gets it."""
    instance_id = bank.apply(KEY, application(employer="   "))
    assert bank.open(instance_id) == [("Task_supplement", None)]
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.endswith("需要补充资料") and "缺少：工作单位" in body
    assert "需要补充资料" in bank.sms("13800138000")[-1]

    bank.decide("alice", "Task_supplement", application())
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]
    assert bank.data(instance_id)["return_count"] == 1
    assert len(bank.bureau_queries()) == 1  # no enquiry on the incomplete first submission


def test_a_large_loan_without_proof_of_assets_is_returned_for_it(bank):
    """Above 200,000 the product policy requires a proof of assets; its absence is a return."""
    instance_id = bank.apply(KEY, application(amount=250000, term_months=60))
    assert bank.open(instance_id) == [("Task_supplement", None)]
    assert "缺少：资产证明（申请金额超过 20 万元时需要）" in bank.mails(ALICE_MAIL)[-1][1]
    documents = [document("id_card"), document("income_proof"), document("asset_proof")]
    bank.decide(
        "alice", "Task_supplement", application(amount=250000, term_months=60, documents=documents)
    )
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]


def test_after_three_returns_a_reviewer_decides_and_sees_why(bank):
    """The 补件 loop is capped: the fourth incomplete submission goes to review, flagged."""
    instance_id = bank.apply(KEY, application(employer="  "))
    for _ in range(3):
        assert bank.open(instance_id) == [("Task_supplement", None)]
        bank.decide("alice", "Task_supplement", application(employer="  "))
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]
    data = bank.data(instance_id)
    assert (data["return_count"], data["route_flag"]) == (3, "too_many_returns")
    assert len([s for s in bank.subjects(ALICE_MAIL) if s.endswith("需要补充资料")]) == 3


def test_a_manager_return_sends_it_back_and_the_review_starts_over(bank):
    """The manager's remarks reach the applicant; after the supplement the same reviewer may
    review again, and the levels follow afresh."""
    instance_id = in_review(bank, amount=150000, term_months=60)
    bank.level("review", amount=150000, term_months=60)
    bank.level("manager", "return", opinion="请补充近 6 个月银行流水")
    assert bank.open(instance_id) == [("Task_supplement", None)]
    assert "审核意见：请补充近 6 个月银行流水" in bank.mails(ALICE_MAIL)[-1][1]

    documents = [document("id_card"), document("income_proof"), document("bank_statement")]
    bank.decide(
        "alice", "Task_supplement", application(amount=150000, term_months=60, documents=documents)
    )
    bank.level("review", amount=150000, term_months=60)
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    assert bank.data(instance_id)["manager_decision"] is None  # a new round: no stale decision


# --- rejections at every level -------------------------------------------------------------------


@pytest.mark.parametrize("rejecting", ["review", "risk", "compliance", "manager", "committee"])
def test_a_rejection_at_any_level_declines_with_that_opinion(bank, rejecting):
    """Whoever rejects, the applicant reads their opinion and the scorecard's suggestions; no
    later level is asked (a countersign still collects both departments' signatures)."""
    instance_id = in_review(bank, **LARGE)
    opinion = f"{rejecting} 认为还款来源不足"
    bank.reject_at(rejecting, opinion, amount=400000, term_months=60)
    assert bank.end(instance_id) == "End_declined"
    assert bank.open(instance_id) == []
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.endswith("未获批准")
    assert opinion in body and "建议：" in body
    assert bank.data(instance_id)["declined_by"] == (
        "countersign" if rejecting in ("risk", "compliance") else rejecting
    )


def test_rejecting_or_returning_needs_an_opinion(bank):
    """The decision form refuses a rejection or return without a written reason."""
    instance_id = in_review(bank)
    for choice in ("reject", "return", "escalate"):
        with pytest.raises(Invalid) as refused:
            bank.decide(
                "rui",
                "Task_review",
                {"review_decision": choice, "review_opinion": " "},
                instance_id,
            )
        assert field_errors(refused.value) == ["review_opinion"]
    with pytest.raises(Invalid) as refused:
        bank.decide("rui", "Task_review", {"review_decision": "approve"}, instance_id)
    assert field_errors(refused.value) == ["review_amount", "review_term_months"]
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]


# --- SLAs: reminder, then escalation to the supervisors ------------------------------------------


@pytest.mark.parametrize(
    ("name", "before", "reminded", "escalated", "supervisor_task", "supervisor"),
    [
        ("review", [], ["rui", "rong", "shuang"], ["su"], "Task_review_supervisor", "su"),
        ("risk", ["review", "compliance"], ["feng"], ["fan"], "Task_risk_supervisor", "fan"),
        ("compliance", ["review", "risk"], ["he"], ["hou"], "Task_compliance_supervisor", "hou"),
        (
            "manager",
            ["review", "risk", "compliance"],
            ["kashuang", "meng", "shuang"],
            ["wei", "wu"],
            "Task_manager_escalated",
            "wu",
        ),
    ],
)
def test_an_overdue_task_is_reminded_then_escalated_to_the_supervisors(
    bank, name, before, reminded, escalated, supervisor_task, supervisor
):
    """After 2 days the group is reminded; after 3 the task moves to the supervisors, whose
    decision (same form) carries the application on."""
    instance_id = in_review(bank, **LARGE)
    for earlier in before:
        bank.level(earlier, amount=400000, term_months=60)
    task = f"Task_{name}"
    assert bank.after(days=1) == 0
    assert bank.after(days=1, minutes=1) == 1
    assert sorted(bank.reminded(instance_id, "reminder")) == sorted(reminded)
    assert task in [t for t, _ in bank.open(instance_id)]

    bank.after(days=1)
    assert sorted(bank.reminded(instance_id, "escalation")) == sorted(escalated)
    assert task not in [t for t, _ in bank.open(instance_id)]
    assert (task, "cancelled", None) in bank.history(instance_id)
    bank.decide(supervisor, supervisor_task, bank.form(name, amount=400000, term_months=60))
    assert supervisor_task not in [t for t, _ in bank.open(instance_id)]
    assert bank.row(instance_id).status == "waiting"


def test_the_committee_is_reminded_and_an_overdue_committee_is_reported(bank):
    """The top level has no supervisors: its delay is reported to the process owners."""
    instance_id = to_committee(bank)
    bank.after(days=2, minutes=1)
    assert sorted(bank.reminded(instance_id, "reminder")) == ["wei", "wu"]
    bank.after(days=2)
    assert bank.reminded(instance_id, "escalation") == ["owen"]
    assert bank.open(instance_id) == [("Task_committee", "credit_committee")]


def test_a_reviewer_may_hand_a_case_to_the_supervisors(bank):
    """Escalate is a decision too: the supervisors decide with the same form."""
    instance_id = in_review(bank)
    bank.level("review", "escalate", opinion="收入证明存疑，请主管把关")
    assert bank.open(instance_id) == [("Task_review_supervisor", "credit_supervisor")]
    bank.decide("su", "Task_review_supervisor", bank.form("review"))
    assert bank.open(instance_id) == [("Task_sign_contract", None)]


# --- the credit bureau is down ------------------------------------------------------------------


def test_when_the_bureau_is_down_a_reviewer_decides_and_sees_the_flag(bank):
    """No decline for the bank's outage: after the retries the application goes to a reviewer,
    flagged, and the countersign is required."""
    bank.bureau.down = True
    bank.bureau.overdue_accounts = 5  # what a working bureau would have said
    instance_id = in_review(bank)
    data = bank.data(instance_id)
    assert data["bureau"]["available"] is False
    assert data["bureau"]["message"] == "bureau unavailable: HTTP 503"
    assert (data["route"], data["route_flag"]) == ("manual", "bureau_unavailable")
    assert len(bank.bureau_queries()) == 3

    bank.level("review")
    assert bank.open(instance_id) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]


# --- segregation of duties ------------------------------------------------------------------------


def test_the_same_person_cannot_decide_two_levels(bank):
    """Shuang is a reviewer and a branch manager: after reviewing, the manager level is refused
    to them, and another manager decides it."""
    instance_id = in_review(bank, amount=150000, term_months=60)
    bank.decide("shuang", "Task_review", bank.form("review", amount=150000, term_months=60))
    with pytest.raises(Forbidden, match="segregation of duties"):
        bank.decide("shuang", "Task_manager", bank.form("manager"), instance_id)
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager")
    assert bank.open(instance_id) == [("Task_sign_contract", None)]


def test_an_applicant_cannot_review_their_own_application(bank):
    """A reviewer applying for a loan never sees their own application as reviewable."""
    instance_id = bank.apply(KEY, application(), applicant="rong")
    with pytest.raises(Forbidden, match="your own application"):
        bank.decide("rong", "Task_review", bank.form("review"), instance_id)


# --- the application form -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"id_number": "110101198503151234"}, ["id_number"]),
        ({"mobile": "12345"}, ["mobile"]),
        ({"amount": 600000}, ["amount"]),
        ({"amount": 80500}, ["amount"]),
        ({"term_months": 18}, ["term_months"]),
        ({"consent": False}, ["consent"]),
        ({"documents": [document("income_proof"), document("bank_statement")]}, ["documents"]),
        ({"documents": [document("id_card")]}, ["documents", "documents"]),
        (
            {"documents": [document("id_card", size=11 * 1024 * 1024), document("income_proof")]},
            ["documents/0/size"],
        ),
        (
            {
                "documents": [
                    document("id_card", content_type="application/zip"),
                    document("income_proof"),
                ]
            },
            ["documents/0/content_type"],
        ),
    ],
    ids=[
        "id-check-digit",
        "mobile",
        "too-much",
        "not-thousands",
        "term",
        "no-consent",
        "no-id-card",
        "too-few",
        "too-large",
        "zip",
    ],
)
def test_the_application_form_refuses_wrong_values(bank, changes, fields):
    """Check digits, ranges, required documents, file sizes and types are checked on submit."""
    instance_id = bank.start(KEY)
    with pytest.raises(Invalid) as refused:
        bank.decide("alice", "Task_apply", application(**changes), instance_id)
    assert field_errors(refused.value) == fields
    assert bank.open(instance_id) == [("Task_apply", None)]


# --- an analyst changes a threshold --------------------------------------------------------------


def test_a_changed_authority_threshold_applies_to_new_applications_only(bank, tmp_path):
    """The analyst lowers the committee threshold from 300,000 to 100,000 in the DMN and
    redeploys: a new 150,000 loan goes to the committee, one already in review does not."""
    old = in_review(bank, amount=150000, term_months=60)
    copy = bundle_copy(tmp_path / "v2", KEY, "authority.dmn", ("&gt; 300000", "&gt; 100000"))
    assert deploy_copy(bank, copy).version == 2
    new = bank.apply(KEY, application(amount=150000, term_months=60), applicant="bob")

    for instance_id in (old, new):
        bank.level("review", amount=150000, term_months=60, instance_id=instance_id)
    assert bank.open(old) == [("Task_manager", "branch_manager")]
    assert bank.open(new) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]
    assert bank.row(old).version_uid != bank.row(new).version_uid

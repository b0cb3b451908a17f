"""The enterprise loan bundle end to end: company screening, levels, SLAs, feedback, contract."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Forbidden, Invalid
from tests.process_helpers import (
    ALICE_MAIL,
    LEVELS,
    Bank,
    document,
    field_errors,
    resident_id,
    uscc,
)

KEY = "enterprise_loan"
SIGNED = {
    "accept_terms": True,
    "signer_name": "王五",
    "company_seal": True,
    "disbursement_account": "110902345610201",
}
#: 6,000,000 over 60 months with collateral documents: countersign, manager and committee.
LARGE = {
    "amount": 6000000,
    "term_months": 60,
    "ebitda": 5000000,
    "documents": [
        document("business_licence"),
        document("financial_statements"),
        document("collateral_documents"),
    ],
}
LARGE_TERMS = {"amount": 6000000, "term_months": 60}


@pytest.fixture
def bank(session_factory, settings, smtp_server, http_stub) -> Bank:
    terms = {"amount": 400000, "term_months": 36}
    return Bank(session_factory, settings, smtp_server, http_stub, [KEY], terms=terms)


def application(**changes: Any) -> dict[str, Any]:
    """A complete application: a manufacturer asks 400,000 over 36 months, a grade-A profile."""
    return {
        "company_name": "北京某制造有限公司",
        "uscc": uscc(),
        "legal_rep_name": "王五",
        "legal_rep_id": resident_id("19750510"),
        "mobile": "13800138000",
        "industry": "manufacturing",
        "years_in_business": 8,
        "employees": 120,
        "amount": 400000,
        "term_months": 36,
        "purpose": "working_capital",
        "annual_revenue": 30000000,
        "ebitda": 3000000,
        "total_assets": 50000000,
        "total_liabilities": 22500000,
        "annual_debt_service": 200000,
        "collateral": "property",
        "documents": [document("business_licence"), document("financial_statements")],
        "consent": True,
        **changes,
    }


def in_review(bank: Bank, **changes: Any) -> int:
    instance_id = bank.apply(KEY, application(**changes))
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]
    return instance_id


# --- the happy paths ---------------------------------------------------------------------------


def test_a_small_loan_is_approved_by_the_reviewer_and_the_contract_signed(bank):
    """400,000 at grade A: one credit review, terms by mail, the sealed contract, done; the
    bureau is asked about the company by its credit code."""
    instance_id = in_review(bank)
    bank.level("review", opinion="经营稳定，现金流充足")
    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    bank.decide("alice", "Task_sign_contract", SIGNED)

    assert bank.end(instance_id) == "End_done"
    reference = bank.row(instance_id).reference
    assert reference.startswith("EL")
    assert bank.subjects(ALICE_MAIL) == [
        f"您的企业贷款申请 {reference} 已受理",
        f"您的企业贷款申请 {reference} 已获批准",
        f"企业贷款申请 {reference} 已办结",
    ]
    approved = bank.mails(ALICE_MAIL)[1][1]
    assert "批准金额：400000 元" in approved and "年利率：3.65%" in approved
    assert "尾号 0201 的对公账户" in bank.mails(ALICE_MAIL)[2][1]
    assert len(bank.sms("13800138000")) == 3
    assert bank.bureau_queries() == [
        {"id_type": "uscc", "id": application()["uscc"], "name": "北京某制造有限公司"}
    ]
    assert bank.audit_problems() == []


def test_over_5_million_needs_countersign_manager_and_committee(bank):
    """6,000,000: risk and compliance in parallel, the manager, then one committee member."""
    instance_id = in_review(bank, **LARGE)
    bank.level("review", **LARGE_TERMS)
    assert bank.open(instance_id) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]
    bank.level("risk", opinion="抵押充足")
    bank.level("compliance")
    bank.level("manager", **LARGE_TERMS)
    assert bank.open(instance_id) == [("Task_committee", "credit_committee")]
    bank.level("committee", who="wu", amount=5000000, term_months=60)
    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    assert bank.data(instance_id)["approved_amount"] == 5000000
    assert bank.data(instance_id)["countersign_opinion"] == "风险 Risk：抵押充足"


def test_between_1_and_5_million_the_countersign_and_the_manager_decide(bank):
    """2,000,000: countersign and the branch manager, no committee."""
    instance_id = in_review(bank, amount=2000000)
    bank.level("review", amount=2000000)
    bank.level("compliance")
    bank.level("risk")
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager", amount=1500000)
    assert bank.open(instance_id) == [("Task_sign_contract", None)]
    assert bank.data(instance_id)["approved_amount"] == 1500000


def test_between_500000_and_1_million_the_branch_manager_alone_follows_the_review(bank):
    """800,000 at grade A: review, then the branch manager."""
    instance_id = in_review(bank, amount=800000)
    bank.level("review", amount=800000)
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]


# --- automatic decisions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason", "suggestion"),
    [
        ({"years_in_business": 1}, "企业经营年限不足 2 年", "可申请政府性融资担保支持的创业贷款"),
        ({"total_liabilities": 45000000}, "资产负债率 90.0% 超过上限 75%", "降低资产负债率"),
        ({"ebitda": 300000}, "偿债覆盖率 0.87 低于下限 1.2", "建议将申请金额降至 130000 元以内"),
        ({"industry": "real_estate"}, "该行业暂不受理经营贷款", "请咨询客户经理了解其他融资方式"),
    ],
    ids=["young-company", "leverage", "debt-service", "restricted-industry"],
)
def test_a_failing_pre_check_declines_at_once_with_reasons_and_suggestions(
    bank, changes, reason, suggestion
):
    """No reviewer is bothered; the company reads why and what it could do."""
    instance_id = bank.apply(KEY, application(**changes))
    assert bank.end(instance_id) == "End_declined"
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.endswith("未获批准")
    assert reason in body and suggestion in body


def test_a_blacklisted_company_is_declined_by_its_credit_code(bank):
    """The blacklist holds credit codes too."""
    bank.blacklist("uscc", application()["uscc"], "虚假财报 false accounts")
    instance_id = bank.apply(KEY, application())
    assert bank.end(instance_id) == "End_declined"
    assert "企业或法定代表人命中本行风险名单" in bank.mails(ALICE_MAIL)[-1][1]


def test_two_overdue_accounts_in_the_company_report_decline_it(bank):
    """The company credit report's overdue accounts count as a hard rule."""
    bank.bureau.overdue_accounts = 2
    instance_id = bank.apply(KEY, application())
    assert bank.end(instance_id) == "End_declined"
    assert "企业征信报告显示 2 笔逾期" in bank.mails(ALICE_MAIL)[-1][1]


# --- returns for more information -----------------------------------------------------------------


def test_a_large_loan_without_collateral_documents_is_returned_then_resumes(bank):
    """Above 3,000,000 the policy asks for collateral documents; once supplied, review follows."""
    instance_id = bank.apply(KEY, application(amount=4000000, ebitda=5000000))
    assert bank.open(instance_id) == [("Task_supplement", None)]
    assert "缺少：抵押物权属证明（申请金额超过 300 万元时需要）" in bank.mails(ALICE_MAIL)[-1][1]
    bank.decide("alice", "Task_supplement", application(**{**LARGE, "amount": 4000000}))
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]


def test_a_compliance_return_sends_its_remarks_to_the_company(bank):
    """A countersign department may return the application: its remarks reach the applicant,
    the other department's approval notwithstanding."""
    instance_id = in_review(bank, amount=2000000)
    bank.level("review", amount=2000000)
    bank.level("risk")
    bank.level("compliance", "return", opinion="请补充公司章程")
    assert bank.open(instance_id) == [("Task_supplement", None)]
    assert "审核意见：合规 Compliance：请补充公司章程" in bank.mails(ALICE_MAIL)[-1][1]


def test_after_three_returns_a_reviewer_decides(bank):
    """A blank company name three times over: the fourth round goes to review, flagged."""
    instance_id = bank.apply(KEY, application(company_name="   "))
    for _ in range(3):
        bank.decide("alice", "Task_supplement", application(company_name="   "))
    assert bank.open(instance_id) == [("Task_review", "credit_reviewer")]
    assert bank.data(instance_id)["route_flag"] == "too_many_returns"


# --- rejections at every level -------------------------------------------------------------------


@pytest.mark.parametrize("rejecting", LEVELS)
def test_a_rejection_at_any_level_declines_with_that_opinion(bank, rejecting):
    """The rejecting level's opinion reaches the company; no later level is asked."""
    instance_id = in_review(bank, **LARGE)
    opinion = f"{rejecting}：行业下行风险较大"
    bank.reject_at(rejecting, opinion, **LARGE_TERMS)
    assert bank.end(instance_id) == "End_declined"
    assert opinion in bank.mails(ALICE_MAIL)[-1][1]


# --- SLAs, the bureau, segregation of duties, the form -----------------------------------------


def test_an_overdue_credit_review_is_reminded_after_3_days_and_escalated_after_5(bank):
    """Enterprise reviews get longer: a reminder on day 3, the supervisors on day 5."""
    instance_id = in_review(bank)
    assert bank.after(days=2) == 0
    bank.after(days=1, minutes=1)
    assert sorted(bank.reminded(instance_id, "reminder")) == ["rong", "rui", "shuang"]
    bank.after(days=2)
    assert bank.reminded(instance_id, "escalation") == ["su"]
    assert bank.open(instance_id) == [("Task_review_supervisor", "credit_supervisor")]
    bank.decide("su", "Task_review_supervisor", bank.form("review"))
    assert bank.open(instance_id) == [("Task_sign_contract", None)]


def test_an_overdue_branch_manager_is_escalated_to_the_committee(bank):
    """The manager level, overdue, is decided by a committee member with the manager's form."""
    instance_id = in_review(bank, amount=800000)
    bank.level("review", amount=800000)
    bank.after(days=3, minutes=1)
    assert sorted(bank.reminded(instance_id, "escalation")) == ["wei", "wu"]
    assert bank.open(instance_id) == [("Task_manager_escalated", "credit_committee")]
    bank.decide("wei", "Task_manager_escalated", bank.form("manager", amount=800000))
    assert bank.open(instance_id) == [("Task_sign_contract", None)]


def test_when_the_bureau_is_down_a_reviewer_decides_with_the_flag(bank):
    """No decline for the outage: flagged manual review, then the countersign."""
    bank.bureau.down = True
    instance_id = in_review(bank)
    data = bank.data(instance_id)
    assert (data["route_flag"], data["bureau"]["available"]) == ("bureau_unavailable", False)
    bank.level("review")
    assert [task for task, _ in bank.open(instance_id)] == ["Task_risk", "Task_compliance"]


def test_the_reviewer_cannot_also_approve_as_branch_manager(bank):
    """Segregation of duties: shuang reviews, so another manager must approve."""
    instance_id = in_review(bank, amount=800000)
    bank.level("review", who="shuang", amount=800000)
    with pytest.raises(Forbidden, match="segregation of duties"):
        bank.level("manager", who="shuang", instance_id=instance_id)
    bank.level("manager", amount=800000)
    assert bank.open(instance_id) == [("Task_sign_contract", None)]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"uscc": "91110101MA01ABCD10"}, ["uscc"]),
        ({"legal_rep_id": "110101197505101230"}, ["legal_rep_id"]),
        ({"amount": 405000}, ["amount"]),
        ({"documents": [document("business_licence"), document("tax_records")]}, ["documents"]),
        ({"total_assets": 0}, ["total_assets"]),
    ],
    ids=["uscc-check", "legal-rep-id", "not-ten-thousands", "no-statements", "no-assets"],
)
def test_the_application_form_refuses_wrong_values(bank, changes, fields):
    """Each wrong field is named; nothing is submitted."""
    instance_id = bank.start(KEY)
    with pytest.raises(Invalid) as refused:
        bank.decide("alice", "Task_apply", application(**changes), instance_id)
    assert field_errors(refused.value) == fields

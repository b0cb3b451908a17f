"""The credit card bundle end to end: card centre review, levels, SLAs, feedback, collection."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Forbidden, Invalid
from tests.process_helpers import (
    ALICE_MAIL,
    LEVELS,
    Bank,
    birth_years_ago,
    document,
    field_errors,
    resident_id,
)

KEY = "credit_card"
COLLECTED = {"received": True, "collection": "courier", "card_last4": "8899"}
#: A platinum card of 180,000: countersign, branch manager and committee.
PLATINUM = {"card_product": "platinum", "requested_limit": 180000, "monthly_income": 40000}
PLATINUM_TERMS = {"limit": 180000, "card_product": "platinum"}


@pytest.fixture
def bank(session_factory, settings, smtp_server, http_stub) -> Bank:
    terms = {"limit": 20000, "card_product": "classic"}
    return Bank(
        session_factory, settings, smtp_server, http_stub, [KEY], terms=terms, reviewer="ka"
    )


def application(**changes: Any) -> dict[str, Any]:
    """A complete application for a classic card with a 20,000 limit, a grade-A profile."""
    return {
        "applicant_name": "张三",
        "id_number": resident_id("19880620"),
        "mobile": "13800138000",
        "card_product": "classic",
        "requested_limit": 20000,
        "employment_type": "employed",
        "employer": "上海某贸易有限公司",
        "employment_years": 5,
        "monthly_income": 15000,
        "monthly_debt": 1000,
        "housing": "owned",
        "delivery_address": "上海市浦东新区世纪大道 100 号",
        "documents": [document("id_card"), document("income_proof")],
        "consent": True,
        **changes,
    }


def in_review(bank: Bank, **changes: Any) -> int:
    instance_id = bank.apply(KEY, application(**changes))
    assert bank.open(instance_id) == [("Task_review", "card_center")]
    return instance_id


# --- the happy paths ---------------------------------------------------------------------------


def test_a_classic_card_is_approved_by_the_card_centre_and_collected(bank):
    """20,000 at grade A: the card centre alone decides; the card's terms by mail, then the
    applicant confirms the card arrived."""
    instance_id = in_review(bank)
    bank.level("review", opinion="资料齐全")
    assert bank.open(instance_id) == [("Task_collect_card", None)]
    bank.decide("alice", "Task_collect_card", COLLECTED)

    assert bank.end(instance_id) == "End_done"
    reference = bank.row(instance_id).reference
    assert reference.startswith("CC")
    assert bank.subjects(ALICE_MAIL) == [
        f"您的信用卡申请 {reference} 已受理",
        f"您的信用卡申请 {reference} 已获批准",
        f"信用卡申请 {reference} 已办结",
    ]
    approved = bank.mails(ALICE_MAIL)[1][1]
    for term in ("卡种：普卡", "信用额度：20000 元", "年费：0 元（免年费）", "审批意见：资料齐全"):
        assert term in approved
    assert "尾号 8899" in bank.mails(ALICE_MAIL)[2][1]
    assert bank.sms("13800138000") == [
        f"【智慧审批】您的信用卡申请 {reference} 已受理，可凭编号查询进度。",
        f"【智慧审批】您的信用卡申请 {reference} 已获批准，请登录查看。",
        f"信用卡申请 {reference} 已办结",
    ]
    assert [who for _, _, who in bank.history(instance_id)] == ["alice", "ka", "alice"]
    assert bank.audit_problems() == []


def test_a_platinum_card_needs_countersign_manager_and_committee(bank):
    """180,000: both departments countersign, then the manager, then one committee member, who
    may grant a smaller card; its fee is the one announced."""
    instance_id = in_review(bank, **PLATINUM)
    bank.level("review", **PLATINUM_TERMS)
    assert bank.open(instance_id) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]
    bank.level("risk")
    bank.level("compliance")
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager", **PLATINUM_TERMS)
    assert bank.open(instance_id) == [("Task_committee", "credit_committee")]
    bank.level("committee", who="wu", limit=100000, card_product="gold")

    assert bank.open(instance_id) == [("Task_collect_card", None)]
    approved = bank.mails(ALICE_MAIL)[-1][1]
    assert "卡种：金卡" in approved and "信用额度：100000 元" in approved
    assert "年费：300 元（年刷卡满 6 次免次年年费）" in approved


def test_a_gold_card_above_50000_goes_to_the_branch_manager(bank):
    """80,000 at grade A: the card centre, then the branch manager."""
    instance_id = in_review(bank, card_product="gold", requested_limit=80000, monthly_income=25000)
    bank.level("review", limit=80000, card_product="gold")
    assert bank.open(instance_id) == [("Task_manager", "branch_manager")]
    bank.level("manager", limit=60000, card_product="gold")
    assert bank.open(instance_id) == [("Task_collect_card", None)]
    assert bank.data(instance_id)["approved_limit"] == 60000


# --- automatic decisions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason", "suggestion"),
    [
        (
            {"card_product": "platinum", "requested_limit": 50000, "monthly_income": 12000},
            "月收入低于该卡种门槛 20000 元",
            "可改为申请门槛较低的卡种（如普卡）",
        ),
        (
            {"requested_limit": 50000},
            "申请额度超过该卡种上限 30000 元",
            "请将申请额度调整至 30000 元以内，或选择更高等级的卡种",
        ),
        (
            {"monthly_income": 5000, "monthly_debt": 2500},
            "月还款负债比 90.0% 超过上限 55%",
            "建议先偿还部分现有负债后再申请",
        ),
        (
            {"id_number": resident_id(birth_years_ago(16))},
            "申请人未满 18 周岁",
            "在校学生可由父母申请附属卡",
        ),
    ],
    ids=["income-below-card", "limit-above-card", "debt", "under-18"],
)
def test_a_failing_pre_check_declines_at_once_with_reasons_and_suggestions(
    bank, changes, reason, suggestion
):
    """The card centre never sees it; the applicant reads why and what to do instead."""
    instance_id = bank.apply(KEY, application(**changes))
    assert bank.end(instance_id) == "End_declined"
    assert bank.open(instance_id) == []
    subject, body = bank.mails(ALICE_MAIL)[-1]
    assert subject.endswith("未获批准")
    assert reason in body and suggestion in body


def test_a_blacklisted_phone_declines_the_application(bank):
    """The blacklist is checked by phone as well as by ID number."""
    bank.blacklist("phone", "13800138000")
    instance_id = bank.apply(KEY, application())
    assert bank.end(instance_id) == "End_declined"
    assert "申请人命中本行风险名单" in bank.mails(ALICE_MAIL)[-1][1]
    assert bank.data(instance_id)["precheck"]["blacklist_reasons"] == [
        "phone blacklisted: 欺诈记录 fraud"
    ]


# --- returns for more information ---------------------------------------------------------------


def test_a_blank_delivery_address_is_asked_for_and_the_card_centre_reviews_the_resubmission(bank):
    """The applicant is told what is missing, resubmits, and the card centre takes it."""
    instance_id = bank.apply(KEY, application(delivery_address="      "))
    assert bank.open(instance_id) == [("Task_supplement", None)]
    assert "缺少：寄卡地址" in bank.mails(ALICE_MAIL)[-1][1]
    bank.decide("alice", "Task_supplement", application())
    assert bank.open(instance_id) == [("Task_review", "card_center")]


def test_after_three_returns_the_card_centre_decides(bank):
    """The 补件 loop ends after three returns: a person decides, flagged."""
    instance_id = bank.apply(KEY, application(employer="   "))
    for _ in range(3):
        bank.decide("alice", "Task_supplement", application(employer="   "))
    assert bank.open(instance_id) == [("Task_review", "card_center")]
    assert bank.data(instance_id)["route_flag"] == "too_many_returns"


def test_a_card_centre_return_reaches_the_applicant_with_the_remarks(bank):
    """A reviewer's return sends the remarks; the resubmission is reviewed again."""
    instance_id = in_review(bank)
    bank.level("review", "return", opinion="请上传近 3 个月工资流水")
    assert "审核意见：请上传近 3 个月工资流水" in bank.mails(ALICE_MAIL)[-1][1]
    documents = [document("id_card"), document("income_proof"), document("bank_statement")]
    bank.decide("alice", "Task_supplement", application(documents=documents))
    assert bank.open(instance_id) == [("Task_review", "card_center")]


# --- rejections at every level -------------------------------------------------------------------


@pytest.mark.parametrize("rejecting", LEVELS)
def test_a_rejection_at_any_level_declines_with_that_opinion(bank, rejecting):
    """The rejecting level's opinion reaches the applicant; no later level is asked."""
    instance_id = in_review(bank, **PLATINUM)
    opinion = f"{rejecting}：负债水平偏高"
    bank.reject_at(rejecting, opinion, **PLATINUM_TERMS)
    assert bank.end(instance_id) == "End_declined"
    assert opinion in bank.mails(ALICE_MAIL)[-1][1]


# --- SLAs ---------------------------------------------------------------------------------------


def test_an_overdue_card_review_is_reminded_after_a_day_and_escalated_after_two(bank):
    """Cards are quicker: the card centre is reminded after 1 day, the credit supervisors take
    over after 2 and decide with the same form."""
    instance_id = in_review(bank)
    assert bank.after(days=1, minutes=1) == 1
    assert sorted(bank.reminded(instance_id, "reminder")) == ["ka", "kai", "kashuang"]
    bank.after(days=1)
    assert bank.reminded(instance_id, "escalation") == ["su"]
    assert bank.open(instance_id) == [("Task_review_supervisor", "credit_supervisor")]
    bank.decide("su", "Task_review_supervisor", bank.form("review"))
    assert bank.open(instance_id) == [("Task_collect_card", None)]


def test_an_overdue_countersign_is_escalated_to_that_department_supervisor(bank):
    """The compliance countersign, overdue, moves to the compliance supervisors."""
    instance_id = in_review(bank, **PLATINUM)
    bank.level("review", **PLATINUM_TERMS)
    bank.level("risk")
    bank.after(days=3, minutes=1)
    assert bank.reminded(instance_id, "escalation") == ["hou"]
    assert bank.open(instance_id) == [("Task_compliance_supervisor", "compliance_supervisor")]


# --- the bureau is down, segregation of duties, the form --------------------------------------


def test_when_the_bureau_is_down_the_card_centre_decides_with_the_flag(bank):
    """Never declined for the bureau's outage: a flagged manual review, then the countersign."""
    bank.bureau.down = True
    instance_id = in_review(bank)
    assert bank.data(instance_id)["route_flag"] == "bureau_unavailable"
    bank.level("review")
    assert bank.open(instance_id) == [
        ("Task_risk", "risk_reviewer"),
        ("Task_compliance", "compliance_reviewer"),
    ]


def test_the_card_reviewer_cannot_also_approve_as_branch_manager(bank):
    """Segregation of duties: the second level must be someone else."""
    gold = {"card_product": "gold", "requested_limit": 80000, "monthly_income": 25000}
    instance_id = in_review(bank, **gold)
    bank.level("review", who="kashuang", limit=80000, card_product="gold")
    with pytest.raises(Forbidden, match="segregation of duties"):
        bank.level("manager", who="kashuang", instance_id=instance_id)
    bank.level("manager")
    assert bank.open(instance_id) == [("Task_collect_card", None)]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"id_number": "11010119880620123X"}, ["id_number"]),
        ({"requested_limit": 20500}, ["requested_limit"]),
        ({"card_product": "black"}, ["card_product"]),
        ({"documents": [document("id_card")]}, ["documents", "documents"]),
        (
            {
                "documents": [
                    document("id_card", content_type="image/gif"),
                    document("income_proof"),
                ]
            },
            ["documents/0/content_type"],
        ),
    ],
    ids=["id-check-digit", "not-thousands", "unknown-card", "no-income-proof", "gif"],
)
def test_the_application_form_refuses_wrong_values(bank, changes, fields):
    """Each wrong field is named; nothing is submitted."""
    instance_id = bank.start(KEY)
    with pytest.raises(Invalid) as refused:
        bank.decide("alice", "Task_apply", application(**changes), instance_id)
    assert field_errors(refused.value) == fields

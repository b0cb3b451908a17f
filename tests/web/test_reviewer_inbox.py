"""The reviewers' inbox in the browser: filters, sorting, pages, the task page, claim, release,
transfer and deciding, with every race and refusal answered by a message."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import audit, clock, documents, runtime
from engine.directory import Actor
from engine.models import HumanTask, ProcessInstance
from tests.process_helpers import loan_application as application

KEY = "personal_loan"
REVIEW = {"review_decision": "approve", "review_amount": "80000", "review_term_months": "36"}
REVIEW_DATA = {"review_decision": "approve", "review_amount": 80000, "review_term_months": 36}


@pytest.fixture
def settings(settings, http_stub, smtp_server):
    """The bureau and SMS gateway answer from a local stub; mail goes to a local sink."""
    report = {"score": 760, "overdue_accounts": 0, "total_debt": 0, "monthly_debt_payment": 0}
    http_stub.respond = lambda request: (200, report)
    return dataclasses.replace(
        settings,
        credit_bureau_url=http_stub.url + "/bureau",
        sms_url=http_stub.url + "/sms",
        smtp_port=smtp_server.port,
    )


@pytest.fixture
def apply(session_factory, settings, people, deployed, work):
    """`apply(**changes)`: an applicant applies for a personal loan (or `key` with `data`); the
    pre-check runs; the application's id. The first applicant is alice, then alice2, alice3…
    (one person's second open application would be held as a duplicate)."""
    applicants: list[str] = []

    def submit(key: str = KEY, data: dict | None = None, **changes: Any) -> int:
        name = "alice" if not applicants else f"alice{len(applicants) + 1}"
        applicants.append(name)
        people(name)
        applicant = Actor(name)
        with session_factory.begin() as session:
            instance_id = runtime.start(session, settings, key, {}, applicant, defer=True).id
        work.drain()
        data = data if data is not None else application(**changes)
        with session_factory.begin() as session:
            task_id = open_task(session, instance_id, "Task_apply")
            runtime.complete_task(session, settings, task_id, applicant, data, defer=True)
        work.drain()
        return instance_id

    return submit


@pytest.fixture
def staff(people):
    """The credit reviewers rui and rong, supervisor su, risk reviewer feng, and "dual", who
    is both a credit reviewer and a credit supervisor."""
    for name, group in [
        ("rui", "credit_reviewer"),
        ("rong", "credit_reviewer"),
        ("su", "credit_supervisor"),
        ("feng", "risk_reviewer"),
    ]:
        people(name, group)
    people("dual", "credit_reviewer", "credit_supervisor")


def open_task(session, instance_id: int, element_id: str = "Task_review") -> int:
    """The id of the open task `element_id` of the application."""
    return session.scalar(
        select(HumanTask.id).where(
            HumanTask.instance_id == instance_id,
            HumanTask.element_id == element_id,
            HumanTask.state.in_(("ready", "claimed")),
        )
    )


def task_of(session_factory, instance_id: int, element_id: str = "Task_review") -> int:
    with session_factory() as session:
        return open_task(session, instance_id, element_id)


def reference(session_factory, instance_id: int) -> str:
    with session_factory() as session:
        return session.get(ProcessInstance, instance_id).reference


def open_elements(session_factory, instance_id: int) -> list[str]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(HumanTask.element_id)
                .where(HumanTask.instance_id == instance_id)
                .where(HumanTask.state.in_(("ready", "claimed")))
                .order_by(HumanTask.id)
            )
        )


def listed(page) -> list[int]:
    """The task ids of the inbox table, in order."""
    return [int(i) for i in re.findall(r'<tr data-task="(\d+)"', page.get_data(as_text=True))]


def text(page) -> str:
    return page.get_data(as_text=True)


def post(client, url: str, data: dict | None = None):
    """A form post from the page (tests run with CSRF protection on, as in production)."""
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})})


def csrf(client) -> str:
    page = client.get("/inbox/")
    return re.search(r'name="csrf_token" value="([^"]+)"', text(page))[1]


def review_task(session_factory, instance_id: int, element_id: str = "Task_review") -> int:
    with session_factory() as session:
        return session.scalar(
            select(HumanTask.id).where(
                HumanTask.instance_id == instance_id,
                HumanTask.element_id == element_id,
                HumanTask.state.in_(("ready", "claimed")),
            )
        )


# --- the list --------------------------------------------------------------------------------


def test_reviewer_sees_their_groups_tasks_and_those_assigned_to_them(
    apply, staff, sign_in, client, session_factory, settings
):
    """Credit reviewers see the review with its number, amount and grade; a risk reviewer
    sees nothing; a task a colleague claimed leaves the others' inboxes."""
    first, second = apply(), apply(amount=120000)
    sign_in("rui")
    page = client.get("/inbox/")
    assert page.status_code == 200
    assert listed(page) == [task_of(session_factory, first), task_of(session_factory, second)]
    body = text(page)
    assert reference(session_factory, first) in body
    assert "个人贷款" in body and "120,000" in body and "alice" in body
    assert re.search(r"<td>A</td>", body)

    sign_in("feng")
    assert listed(client.get("/inbox/")) == []

    sign_in("rong")
    post(client, f"/inbox/tasks/{task_of(session_factory, first)}/claim")
    assert listed(client.get("/inbox/")) == [
        task_of(session_factory, first),
        task_of(session_factory, second),
    ]
    sign_in("rui")
    assert listed(client.get("/inbox/")) == [task_of(session_factory, second)]


def test_the_inbox_filters_by_type_amount_band_and_grade(
    apply, staff, sign_in, client, session_factory
):
    """Type, amount band and risk grade narrow the list; the total counts what matched."""
    small, large = apply(amount=50000), apply(amount=150000)
    sample = apply(
        "sample_approval", {"applicant_name": "张三", "amount": 90000, "purpose": "travel"}
    )
    with session_factory.begin() as session:
        session.get(ProcessInstance, large).risk_grade = "B"
    ids = {i: task_of(session_factory, i) for i in (small, large, sample)}
    sign_in("rui")

    assert listed(client.get("/inbox/?type=sample_approval")) == [ids[sample]]
    assert listed(client.get("/inbox/?type=personal_loan")) == [ids[small], ids[large]]
    assert listed(client.get("/inbox/?min=60000&max=100000")) == [ids[sample]]
    assert listed(client.get("/inbox/?min=100000")) == [ids[large]]
    page = client.get("/inbox/?grade=b")
    assert listed(page) == [ids[large]]
    assert "共 1 个任务" in text(page)


def test_overdue_tasks_are_found_and_highlighted(apply, staff, sign_in, client, session_factory):
    """Two days on, the review (due in two days) is overdue: the filter finds it, it is marked."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    assert listed(client.get("/inbox/?due=overdue")) == []
    clock.travel(timedelta(days=2, hours=1))
    page = client.get("/inbox/?due=overdue")
    assert listed(page) == [task_id]
    assert 'class="overdue"' in text(page) and "已超时" in text(page)
    assert listed(client.get("/inbox/?due=none")) == []


def test_the_inbox_sorts_by_amount_and_pages(apply, staff, sign_in, client, session_factory):
    """Largest amount first when asked; eleven tasks make two pages of ten."""
    amounts = [50000, 150000, 80000] + [20000 + 1000 * n for n in range(8)]
    ids = {amount: task_of(session_factory, apply(amount=amount)) for amount in amounts}
    sign_in("rui")
    first = client.get("/inbox/?sort=amount&order=desc&size=10")
    by_amount = [ids[a] for a in sorted(amounts, reverse=True)]
    assert listed(first) == by_amount[:10]
    assert "第 1 页，共 2 页" in text(first)
    assert "page=2" in text(first) and "sort=amount" in text(first)
    second = client.get("/inbox/?sort=amount&order=desc&size=10&page=2")
    assert listed(second) == by_amount[10:]
    assert listed(client.get("/inbox/?sort=amount&size=10"))[:2] == [ids[20000], ids[21000]]


def test_a_bad_filter_value_is_named_and_the_rest_still_applies(
    apply, staff, sign_in, client, session_factory
):
    """A minimum that is no number and an unknown type are named; the grade filter works."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    page = client.get("/inbox/?min=lots&type=mortgage&grade=A&page=0")
    assert page.status_code == 400
    body = text(page)
    assert "最低金额：请输入数字" in body
    assert "未知的申请类型" in body and "页码" in body
    assert listed(page) == [task_id]


def test_someone_who_is_not_staff_cannot_open_the_inbox(sign_in, client):
    """An applicant is refused the inbox."""
    sign_in("alice")
    assert client.get("/inbox/").status_code == 403


# --- the task page -------------------------------------------------------------------------


def test_the_task_page_shows_the_application_screening_and_documents(
    apply, staff, sign_in, client, session_factory, settings
):
    """The answers with their form titles, the screening score, grade and reasons, and the
    documents drawn inline (image and PDF) from the document URL."""
    instance_id = apply()
    with session_factory.begin() as session:
        png = documents.store(session, settings, "alice", "id_card", "id.png", PNG)
        pdf = documents.store(session, settings, "alice", "income_proof", "pay.pdf", PDF)
        png.instance_id = pdf.instance_id = instance_id
        png_id, pdf_id = png.id, pdf.id
    sign_in("rui")
    page = client.get(f"/inbox/tasks/{task_of(session_factory, instance_id)}")
    assert page.status_code == 200
    body = text(page)
    assert "申请金额（元）Amount (CNY)" in body and "装修 Renovation" in body
    assert re.search(r'data-testid="grade">A<', body)
    assert re.search(r'data-testid="score">\d+<', body)
    assert "月收入" in body and "征信评分 760" in body
    assert re.search(rf'<img src="[^"]*documents/{png_id}"', body)
    assert re.search(rf'<iframe src="[^"]*documents/{pdf_id}"', body)
    assert "id.png" in body and "pay.pdf" in body


def test_someone_outside_the_groups_is_told_the_task_does_not_exist(
    apply, staff, sign_in, client, session_factory
):
    """A risk reviewer asking for a credit review gets 404, as for a task that is not there."""
    task_id = task_of(session_factory, apply())
    sign_in("feng")
    assert client.get(f"/inbox/tasks/{task_id}").status_code == 404
    assert client.get("/inbox/tasks/99999").status_code == 404


def test_a_claimed_task_shows_who_took_it_to_a_colleague(
    apply, staff, sign_in, client, session_factory
):
    """rui claims; rong's page says taken by rui, offers no decision form, and claiming
    anyway brings a clear message and the inbox."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    answer = post(client, f"/inbox/tasks/{task_id}/claim")
    assert answer.status_code == 302
    sign_in("rong")
    body = text(client.get(f"/inbox/tasks/{task_id}"))
    assert "已被 rui 认领" in body
    assert "该任务已被 rui 认领" in body
    assert f"/inbox/tasks/{task_id}/complete" not in body
    answer = post(client, f"/inbox/tasks/{task_id}/claim")
    assert answer.headers["Location"].endswith("/inbox/")
    assert "已被他人抢先处理：该任务已被 rui 认领" in text(client.get("/inbox/"))


def test_a_claimed_task_can_be_released_to_the_group(
    apply, staff, sign_in, client, session_factory
):
    """After release the task is unclaimed and back in the colleague's inbox."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    post(client, f"/inbox/tasks/{task_id}/claim")
    post(client, f"/inbox/tasks/{task_id}/release")
    sign_in("rong")
    assert listed(client.get("/inbox/")) == [task_id]
    with session_factory() as session:
        assert session.get(HumanTask, task_id).assignee is None


def test_completing_a_review_moves_the_application_on_and_opens_the_next_task(
    apply, staff, sign_in, client, session_factory, work
):
    """Approving the first review redirects to the second application's review; once the
    worker ran, the first waits for the applicant's signature."""
    first, second = apply(), apply()
    sign_in("rui")
    answer = post(client, f"/inbox/tasks/{task_of(session_factory, first)}/complete", REVIEW)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/inbox/tasks/{task_of(session_factory, second)}")
    assert "审批意见已提交；这是您的下一个任务。" in text(client.get(answer.headers["Location"]))
    work.drain()
    assert open_elements(session_factory, first) == ["Task_sign_contract"]
    with session_factory() as session:
        done = session.scalar(
            select(HumanTask).where(
                HumanTask.instance_id == first, HumanTask.element_id == "Task_review"
            )
        )
        assert (done.completed_by, done.submitted["review_amount"]) == ("rui", 80000)

    answer = post(client, f"/inbox/tasks/{task_of(session_factory, second)}/complete", REVIEW)
    assert answer.headers["Location"].endswith("/inbox/")
    assert "您的待办已全部处理完毕" in text(client.get("/inbox/"))


def test_the_second_reviewer_to_complete_a_task_gets_a_clear_message(
    apply, staff, sign_in, client, session_factory, settings
):
    """rui and rong both had the page open; rui decides first; rong is told, not shown an
    error page, and nothing of rong's is recorded."""
    task_id = task_of(session_factory, apply())
    sign_in("rong")
    assert f"/inbox/tasks/{task_id}/complete" in text(client.get(f"/inbox/tasks/{task_id}"))
    rui = Actor("rui", frozenset({"credit_reviewer"}))
    with session_factory.begin() as session:  # rui, in another browser, is quicker
        runtime.complete_task(session, settings, task_id, rui, {**REVIEW_DATA}, defer=True)
    answer = post(client, f"/inbox/tasks/{task_id}/complete", REVIEW)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/inbox/")
    assert "已被他人抢先处理：该任务已完成" in text(client.get("/inbox/"))
    with session_factory() as session:
        assert session.get(HumanTask, task_id).completed_by == "rui"


def test_a_refused_decision_is_drawn_again_with_the_errors_next_to_the_fields(
    apply, staff, sign_in, client, session_factory
):
    """Rejecting without an opinion: 422, the form again, the error under the opinion."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    answer = post(client, f"/inbox/tasks/{task_id}/complete", {"review_decision": "reject"})
    assert answer.status_code == 422
    field = re.search(r'data-field="review_opinion">.*?</div>\s*</div>', text(answer), re.S)[0]
    assert 'class="field-error"' in field
    assert re.search(r'value="reject" checked', text(answer))
    with session_factory() as session:
        assert session.get(HumanTask, task_id).state == "ready"


def test_the_same_person_cannot_decide_a_second_level(
    apply, staff, sign_in, client, session_factory, work
):
    """dual escalates the review to the supervisors; as a supervisor dual is shown why they
    may not decide, and a post is refused with that message; su sees dual's opinion."""
    instance_id = apply()
    sign_in("dual")
    escalate = {"review_decision": "escalate", "review_opinion": "金额偏高，请主管定夺"}
    post(client, f"/inbox/tasks/{task_of(session_factory, instance_id)}/complete", escalate)
    work.drain()
    supervisor_task = task_of(session_factory, instance_id, "Task_review_supervisor")
    assert supervisor_task is not None
    page = text(client.get(f"/inbox/tasks/{supervisor_task}"))
    assert "岗位分离" in page
    answer = post(client, f"/inbox/tasks/{supervisor_task}/complete", {"x": "1"})
    assert answer.headers["Location"].endswith(f"/inbox/tasks/{supervisor_task}")
    assert "不允许此操作：您已处理过本申请的“人工审核 Credit review”" in text(
        client.get(answer.headers["Location"])
    )

    sign_in("su")
    page = text(client.get(f"/inbox/tasks/{supervisor_task}"))
    assert "金额偏高，请主管定夺" in page and "提交主管 Escalate to the supervisor" in page
    assert "人工审核 Credit review — dual" in page


def test_a_reviewer_transfers_a_task_to_a_colleague(apply, staff, sign_in, client, session_factory):
    """rui hands the claimed review to rong: it is rong's, audited; feng is not offered and
    a transfer to feng is refused with the reason."""
    task_id = task_of(session_factory, apply())
    sign_in("rui")
    post(client, f"/inbox/tasks/{task_id}/claim")
    page = text(client.get(f"/inbox/tasks/{task_id}"))
    assert '<option value="rong">' in page and '<option value="feng">' not in page
    answer = post(client, f"/inbox/tasks/{task_id}/transfer", {"to": "feng"})
    assert answer.headers["Location"].endswith(f"/inbox/tasks/{task_id}")
    assert "feng 不在该任务的岗位组中" in text(client.get(answer.headers["Location"]))

    answer = post(client, f"/inbox/tasks/{task_id}/transfer", {"to": "rong"})
    assert answer.headers["Location"].endswith("/inbox/")
    assert "任务已转交给 rong" in text(client.get("/inbox/"))
    sign_in("rong")
    assert listed(client.get("/inbox/")) == [task_id]
    with session_factory() as session:
        assert session.get(HumanTask, task_id).assignee == "rong"
        kinds = [e.kind for e in audit.events_for_instance(session, instance_of(session, task_id))]
    assert kinds[-1] == "transfer"


def test_the_inbox_speaks_english_on_request(apply, staff, sign_in, client, session_factory):
    """After choosing English, the inbox and its messages are in English."""
    apply()
    sign_in("rui")
    client.get("/lang/en")
    page = text(client.get("/inbox/?min=lots"))
    assert "Task inbox" in page and "Minimum amount: enter a number" in page
    assert "Personal loan" in page


def instance_of(session, task_id: int) -> int:
    return session.get(HumanTask, task_id).instance_id


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

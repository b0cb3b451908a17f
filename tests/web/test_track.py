"""The track area: progress page, result, diagram, lookup by number, and the message centre.

Applications are driven through the engine (`runtime.start`, `runtime.complete_task`) and the
background work runs with `work.drain()`, as a worker would; the pages are read as a person
sees them, in Chinese by default.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask_babel import format_datetime
from sqlalchemy import select

from engine import inbox, runtime
from engine.directory import Actor
from engine.models import AuditEvent, ProcessInstance
from tests.engine.test_personal_loan import LARGE, SIGNED, application
from tests.stubs import outside_world

KEY = "personal_loan"
STAFF = {
    "rui": ("芮审核", "credit_reviewer"),
    "feng": ("冯风险", "risk_reviewer"),
    "he": ("何合规", "compliance_reviewer"),
    "meng": ("孟行长", "branch_manager"),
    "wei": ("魏委员", "credit_committee"),
    "ka": ("卡审核", "card_center"),
}
LEVELS = {
    "review": "rui",
    "risk": "feng",
    "compliance": "he",
    "manager": "meng",
    "committee": "wei",
}


@pytest.fixture
def bureau() -> dict:
    """What the credit bureau stub answers; tests change it before the pre-check runs."""
    return {"score": 760, "overdue_accounts": 0, "total_debt": 0, "monthly_debt_payment": 0}


@pytest.fixture
def settings(settings, smtp_server, http_stub, bureau):
    """The suite's settings, with mail, SMS and the credit bureau on local stub servers."""
    return outside_world(settings, smtp_server, http_stub, bureau)


@pytest.fixture
def bank(people, deployed, work, session_factory, settings):
    """Applicants alice and bob and the bank's staff, with a way to drive applications."""
    people("alice", display_name="张三", email="alice@example.com", phone="13800138000")
    people("bob", display_name="李四", email="bob@example.com", phone="13900139000")
    for username, (name, group) in STAFF.items():
        people(username, group, display_name=name, email=f"{username}@bank.example")
    return Driver(session_factory, settings, work)


@dataclasses.dataclass
class Driver:
    session_factory: object
    settings: object
    work: object

    def start(self, applicant: str = "alice") -> tuple[int, str]:
        """A new application (handed to the worker, not yet run): its id and number."""
        with self.session_factory.begin() as session:
            row = runtime.start(session, self.settings, KEY, {}, Actor(applicant), defer=True)
            return row.id, row.reference

    def act(self, who: str, element_id: str, instance_id: int, data: dict) -> None:
        """`who` completes their open task `element_id`, then the worker runs what follows."""
        self.work.drain()
        groups = frozenset({STAFF[who][1]}) if who in STAFF else frozenset()
        with self.session_factory.begin() as session:
            (task,) = [
                t
                for t in inbox.tasks_of_instance(session, instance_id)
                if t.element_id == element_id and t.state in ("ready", "claimed")
            ]
            runtime.complete_task(
                session, self.settings, task.id, Actor(who, groups), data, defer=True
            )
        self.work.drain()

    def apply(self, applicant: str = "alice", **changes) -> tuple[int, str]:
        instance_id, reference = self.start(applicant)
        self.act(applicant, "Task_apply", instance_id, application(**changes))
        return instance_id, reference

    def level(
        self, instance_id: int, name: str, choice: str = "approve", opinion: str = "", **terms
    ):
        """The usual decider of level `name` decides it (deciding levels give the terms)."""
        data = {f"{name}_decision": choice, f"{name}_opinion": opinion or f"{name} 同意"}
        if choice == "approve" and name in ("review", "manager", "committee"):
            terms = terms or {"amount": 80000, "term_months": 36}
            data |= {f"{name}_{term}": value for term, value in terms.items()}
        self.act(LEVELS[name], f"Task_{name}", instance_id, data)


def page(client, reference: str) -> str:
    response = client.get(f"/track/{reference}")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def text_of(html: str) -> str:
    """The page's words with tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def attribute(html: str, name: str) -> set[str]:
    return set(re.search(rf'{name}="([^"]*)"', html).group(1).split())


# --- progress ----------------------------------------------------------------------------------


def test_progress_shows_processing_then_the_credit_review_as_the_current_step(
    client, sign_in, bank
):
    """While the worker has it the page says so; then it names the step, group and diagram ids."""
    instance_id, reference = bank.start()
    sign_in("alice")
    assert "处理中" in text_of(page(client, reference))

    bank.act("alice", "Task_apply", instance_id, application())
    html = page(client, reference)
    words = text_of(html)
    assert "等待：人工审核 Credit review" in words and "信贷审核员" in words
    assert attribute(html, "data-current") == {"Task_review"}
    assert {"StartEvent_submit", "Task_apply", "Task_precheck"} <= attribute(html, "data-done")
    assert "Task_review" not in attribute(html, "data-done")
    assert 'data-testid="result"' not in html


def test_the_timeline_lists_each_opinion_with_who_and_when(client, sign_in, bank, app):
    """The reviewer's decision appears with their name, the time, and their opinion."""
    instance_id, reference = bank.apply()
    bank.level(instance_id, "review", "reject", opinion="收入证明与银行流水不符")
    with app.app_context(), bank.session_factory() as session:
        at = session.scalar(
            select(AuditEvent.at).where(
                AuditEvent.instance_id == instance_id, AuditEvent.actor == "rui"
            )
        )
        with app.test_request_context():
            when = format_datetime(at, "yyyy-MM-dd HH:mm")
    sign_in("alice")
    words = text_of(page(client, reference))
    timeline = words[words.index("进度记录") :]
    assert f"{when} 芮审核 步骤完成: 拒绝 人工审核 Credit review 收入证明与银行流水不符" in timeline
    assert "张三 步骤完成 填写申请 Fill in the application" in timeline


def test_a_declined_application_shows_the_reasons_and_suggestions(client, sign_in, bank, bureau):
    """A pre-check decline: the result names what failed and what the applicant can do."""
    bureau["overdue_accounts"] = 3
    _, reference = bank.apply()
    sign_in("alice")
    html = page(client, reference)
    result = text_of(html.split('data-testid="result"')[1].split("</section>")[0])
    assert "未获批准" in result
    assert "征信报告显示 3 笔逾期" in result and "保持 6 个月良好记录后再申请" in result
    assert "已办结" in text_of(html)


def test_an_approved_application_shows_every_levels_opinion_and_the_contract_task(
    client, sign_in, bank
):
    """Five levels approve; each opinion shows; the applicant is sent to sign the contract."""
    instance_id, reference = bank.apply(**LARGE)
    for name in LEVELS:
        bank.level(instance_id, name, amount=400000, term_months=60)
    sign_in("alice")
    html = page(client, reference)
    opinions = text_of(html.split('data-testid="opinions"')[1].split("</section>")[0])
    for name, who in LEVELS.items():
        assert f"批准 {name} 同意 {STAFF[who][0]}" in opinions
    assert attribute(html, "data-current") == {"Task_sign_contract"}
    with bank.session_factory() as session:
        (task,) = [t for t in inbox.tasks_of_instance(session, instance_id) if t.state == "ready"]
    assert f'/applications/{instance_id}/task/{task.id}"' in html

    bank.act("alice", "Task_sign_contract", instance_id, SIGNED)
    html = page(client, reference)
    result = text_of(html.split('data-testid="result">')[1].split("</section>")[0])
    assert result == "结果 已签约 Contract signed"


def test_a_page_in_english_after_switching_language(client, sign_in, bank):
    """/lang/en switches the page's own words to English."""
    _, reference = bank.apply()
    sign_in("alice")
    client.get("/lang/en")
    words = text_of(page(client, reference))
    assert "Waiting on: 人工审核 Credit review" in words and "Timeline" in words
    assert "Credit reviewer" in words


# --- the diagram --------------------------------------------------------------------------------


def test_the_diagram_endpoint_returns_the_versions_bpmn(client, sign_in, bank):
    """The XML the viewer draws is the deployed diagram of the application's version."""
    _, reference = bank.apply()
    sign_in("alice")
    response = client.get(f"/track/{reference}/diagram.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'"
    assert '<bpmn:process id="personal_loan"' in response.get_data(as_text=True)


def test_without_the_viewer_files_the_page_says_the_diagram_is_not_drawn(
    client, sign_in, bank, app, tmp_path
):
    """No `npm ci` on the server: progress still shows, with a note instead of the drawing."""
    _, reference = bank.apply()
    sign_in("alice")
    app.static_folder = str(tmp_path)
    html = page(client, reference)
    assert 'data-testid="no-diagram"' in html and 'id="diagram"' not in html
    assert "等待：人工审核" in text_of(html)

    viewer = tmp_path / "vendor" / "bpmn-js" / "bpmn-navigated-viewer.production.min.js"
    viewer.parent.mkdir(parents=True)
    viewer.write_text("window.BpmnJS = function () {};")
    html = page(client, reference)
    assert 'id="diagram"' in html and "/static/progress.js" in html
    assert f'data-xml-url="/track/{reference}/diagram.bpmn"' in html
    assert "//cdn" not in html and "unpkg" not in html


# --- who may look ------------------------------------------------------------------------------


@pytest.mark.parametrize("outsider", ["bob", "ka"])
def test_someone_else_gets_not_found_on_the_page_and_the_diagram(client, sign_in, bank, outsider):
    """Another applicant or an uninvolved department: 404, as for a number that does not exist."""
    _, reference = bank.apply()
    sign_in(outsider)
    for url in (f"/track/{reference}", f"/track/{reference}/diagram.bpmn"):
        assert client.get(url).status_code == 404
    missing = client.get("/track/PL19990101000001")
    assert missing.status_code == 404
    assert client.get(f"/track/{reference}").get_data(as_text=True).count(reference) == (
        missing.get_data(as_text=True).count("PL19990101000001")
    )


def test_the_reviewer_of_the_application_may_read_its_progress(client, sign_in, bank):
    """A credit reviewer sees the application waiting in their group's inbox."""
    _, reference = bank.apply()
    sign_in("rui")
    assert "人工审核 Credit review" in text_of(page(client, reference))


def test_signed_out_visitors_are_sent_to_sign_in(client, bank):
    """The pages need a signed-in person."""
    _, reference = bank.apply()
    for url in ("/track/", f"/track/{reference}", "/track/messages"):
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.location


def test_the_lookup_form_goes_to_the_application_by_its_number(client, sign_in, bank):
    """Typed in lower case with spaces, the number still finds the application."""
    _, reference = bank.apply()
    sign_in("alice")
    assert "申请编号" in client.get("/track/").get_data(as_text=True)
    response = client.get("/track/", query_string={"reference": f" {reference.lower()} "})
    assert response.status_code == 302 and response.location.endswith(f"/track/{reference}")
    assert reference in page(client, response.location.rsplit("/", 1)[1])


# --- messages ----------------------------------------------------------------------------------


def csrf(html: str) -> dict[str, str]:
    """The CSRF token of a form on the page, as the browser would post it."""
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)}


def unread_badge(html: str) -> int:
    found = re.search(r'data-testid="unread">(\d+)<', html)
    return int(found.group(1)) if found else 0


def test_the_message_centre_lists_the_submitted_message_and_marks_it_read(
    client, sign_in, bank, app
):
    """The 'submitted' in-app message names the number; reading it lowers the badge."""
    _, reference = bank.apply()
    sign_in("alice")
    html = client.get("/track/messages").get_data(as_text=True)
    assert reference in html and "已受理" in html
    unread = unread_badge(html)
    assert unread >= 1
    message_id = re.search(r'/track/messages/(\d+)/read"', html).group(1)

    response = client.post(f"/track/messages/{message_id}/read", data=csrf(html))
    assert response.status_code == 302
    html = client.get("/track/messages").get_data(as_text=True)
    assert unread_badge(html) == unread - 1
    client.post("/track/messages/read", data=csrf(html))
    html = client.get("/track/messages").get_data(as_text=True)
    assert unread_badge(html) == 0 and "全部标为已读" not in html


def test_nobody_can_mark_someone_elses_message_read(client, sign_in, bank, app):
    """Bob marking Alice's message: not found, and it stays unread for her."""
    bank.apply()
    bank.apply("bob")
    sign_in("alice")
    html = client.get("/track/messages").get_data(as_text=True)
    message_id = re.search(r'/track/messages/(\d+)/read"', html).group(1)
    sign_in("bob")
    token = csrf(client.get("/track/messages").get_data(as_text=True))
    assert client.post(f"/track/messages/{message_id}/read", data=token).status_code == 404
    sign_in("alice")
    assert unread_badge(client.get("/track/messages").get_data(as_text=True)) >= 1


def test_application_rows_are_untouched_by_reading_progress(client, sign_in, bank):
    """Reading progress never changes the application (no hidden engine step)."""
    instance_id, reference = bank.apply()
    with bank.session_factory() as session:
        before = session.get(ProcessInstance, instance_id).lock_version
    sign_in("alice")
    page(client, reference)
    with bank.session_factory() as session:
        assert session.get(ProcessInstance, instance_id).lock_version == before

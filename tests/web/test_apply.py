"""The applicant portal: choosing a type, filling in with uploads, confirming, submitting;
my applications, withdrawing, documents, and the applicant's own open tasks."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import struct
import threading
import zlib
from typing import Any

import pytest
from sqlalchemy import select

from engine import api_tokens, audit, bundles, inbox, runtime, second_factor
from engine.models import Document, Draft, HumanTask, ProcessInstance, User
from tests.factories import REPO
from tests.process_helpers import person, resident_id
from tests.stubs import outside_world
from web import access
from web.extensions import db

KEY = "personal_loan"


def png() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def form(**changes: Any) -> dict[str, Any]:
    """The personal-loan form as a browser posts it (text), valid unless changed."""
    fields = {
        "applicant_name": "张三",
        "id_number": resident_id("19850315"),
        "mobile": "13800138000",
        "amount": "80000",
        "term_months": "36",
        "purpose": "renovation",
        "employment_type": "employed",
        "employer": "北京某科技有限公司",
        "employment_years": "6",
        "monthly_income": "15000",
        "monthly_debt": "1000",
        "housing": "owned",
        "consent": "on",
        **changes,
    }
    return {k: v for k, v in fields.items() if v is not None}


def uploads(*files: tuple[str, str, bytes]) -> dict[str, Any]:
    """Upload rows: (kind, file name, bytes) each."""
    posted: dict[str, Any] = {}
    for i, (kind, name, content) in enumerate(files):
        posted[f"documents-kind-{i}"] = kind
        posted[f"documents-file-{i}"] = (io.BytesIO(content), name)
    return posted


GOOD_FILES = (("id_card", "身份证.png", png()), ("income_proof", "income.pdf", PDF))


def token(client) -> str:
    """The CSRF token every form of the signed-in session carries."""
    page = client.get("/applications/mine").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post(client, url: str, data: dict | None = None, **kwargs):
    """A form post as the browser sends it (multipart, with the CSRF token)."""
    data = {"csrf_token": token(client), **(data or {})}
    return client.post(url, data=data, content_type="multipart/form-data", **kwargs)


@pytest.fixture
def settings(settings, smtp_server, http_stub):
    """The suite's settings, with mail, SMS and the credit bureau on local stub servers."""
    report = {"score": 760, "overdue_accounts": 0, "total_debt": 0, "monthly_debt_payment": 0}
    return outside_world(settings, smtp_server, http_stub, report)


@pytest.fixture
def applicant(sign_in, deployed):
    sign_in("alice")
    return "alice"


@pytest.fixture
def rows(app):
    """Read rows afresh: `rows(Model, *where)`."""
    from web.extensions import db

    def read(model, *where):
        with app.app_context():
            return db.session.scalars(select(model).where(*where)).all()

    return read


def fill_and_confirm(client, **changes) -> None:
    answer = post(client, f"/applications/new/{KEY}", {**form(**changes), **uploads(*GOOD_FILES)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Location"].endswith(f"/applications/new/{KEY}/confirm")


def submit(client) -> str:
    """Submit the confirmed draft; the application number shown."""
    answer = post(client, f"/applications/new/{KEY}/submit", follow_redirects=True)
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    return re.search(r"PL\d{14}", page).group(0)


def field_errors(page: str, name: str) -> list[str]:
    """The error messages drawn inside the field `name`."""
    block = re.search(
        rf'data-field="{name}".*?(?=<div class="field[ "]|<fieldset|<p><button)', page, re.S
    )
    assert block, f"no field {name}"
    return re.findall(r'class="field-error"[^>]*>([^<]*)<', block.group(0))


# --- choosing a type -------------------------------------------------------------------------


def test_types_list_offers_each_deployed_bundle_with_its_title(client, applicant):
    """The applicant sees every approval type with its form's title and a start link."""
    page = client.get("/applications/").get_data(as_text=True)
    assert "个人贷款申请 Personal loan application" in page
    assert f'href="/applications/new/{KEY}"' in page
    assert 'href="/applications/new/credit_card"' in page


# --- filling in, confirming, submitting ----------------------------------------------------


def test_personal_loan_submitted_through_the_pages_gets_a_number_and_starts_the_pre_check(
    client, applicant, rows, settings, work
):
    """Form with a PNG and a PDF → confirm page → submit: number shown, instance and documents
    stored, and the worker runs the pre-check."""
    page = client.get(f"/applications/new/{KEY}").get_data(as_text=True)
    assert "居民身份证号 Resident ID number" in page and 'type="file"' in page
    fill_and_confirm(client)

    confirm = client.get(f"/applications/new/{KEY}/confirm").get_data(as_text=True)
    assert "装修 Renovation" in confirm and "受雇 Employed" in confirm
    assert resident_id("19850315") in confirm and "80000" in confirm
    assert "身份证.png" in confirm and "income.pdf" in confirm
    assert "修改" in confirm and "提交" in confirm
    edit = client.get(f"/applications/new/{KEY}").get_data(as_text=True)  # 修改 goes back
    assert 'value="北京某科技有限公司"' in edit and "身份证.png" in edit

    reference = submit(client)
    (row,) = rows(ProcessInstance, ProcessInstance.reference == reference)
    assert row.started_by == "alice" and row.status == "running"
    (apply_task,) = rows(HumanTask, HumanTask.instance_id == row.id)
    assert apply_task.element_id == "Task_apply" and apply_task.state == "completed"
    assert apply_task.submitted["id_number"] == resident_id("19850315")
    assert apply_task.submitted["amount"] == 80000
    docs = rows(Document, Document.instance_id == row.id)
    assert sorted(d.content_type for d in docs) == ["application/pdf", "image/png"]
    for doc in docs:
        stored = settings.documents_dir / doc.sha256[:2] / doc.sha256
        assert stored.is_file() and stored.stat().st_size == doc.size

    assert work.drain() > 0
    (row,) = rows(ProcessInstance, ProcessInstance.reference == reference)
    assert row.status == "waiting"
    open_tasks = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    assert [t.element_id for t in open_tasks] == ["Task_review"]


def test_bad_resident_id_is_named_next_to_its_field_and_every_value_is_kept(client, applicant):
    """A wrong check digit: 422, the error inside the ID field, the entered values and the
    uploaded documents still there."""
    bad = resident_id("19850315")[:-1] + ("0" if resident_id("19850315")[-1] != "0" else "1")
    answer = post(
        client, f"/applications/new/{KEY}", {**form(id_number=bad), **uploads(*GOOD_FILES)}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert field_errors(page, "id_number") and not field_errors(page, "mobile")
    assert f'value="{bad}"' in page and 'value="北京某科技有限公司"' in page
    assert "身份证.png" in page and "income.pdf" in page

    fixed = post(client, f"/applications/new/{KEY}", form())  # the documents were kept
    assert fixed.status_code == 302


def test_schema_is_checked_on_the_server_when_the_browser_checks_are_bypassed(client, applicant):
    """Values the browser would have stopped (amount below the minimum, no consent, an
    unknown purpose) are refused by the server next to each field."""
    answer = post(
        client,
        f"/applications/new/{KEY}",
        {**form(amount="5", consent=None, purpose="casino"), **uploads(*GOOD_FILES)},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert field_errors(page, "amount") and field_errors(page, "consent")
    assert field_errors(page, "purpose")


def test_submitting_without_a_checked_draft_is_refused(client, applicant, rows):
    """Posting straight to submit (no form filled) starts nothing."""
    answer = post(client, f"/applications/new/{KEY}/submit")
    assert answer.status_code == 422
    assert rows(ProcessInstance) == []


# --- the draft on the server: double submit, long values, NaN, sign-out ----------------------


def test_double_click_on_submit_starts_one_application_and_tells_the_second_click(
    client, applicant, rows
):
    """The same cookie posts "submit" twice: one application; the second click lands on my
    applications with a clear message, and no draft is left."""
    fill_and_confirm(client)
    cookie = client.get_cookie("session").value
    csrf = token(client)
    first = client.post(f"/applications/new/{KEY}/submit", data={"csrf_token": csrf})
    assert first.status_code == 302 and "/submitted" in first.headers["Location"]
    client.set_cookie("session", cookie)  # the second click still carries the old cookie
    second = client.post(
        f"/applications/new/{KEY}/submit", data={"csrf_token": csrf}, follow_redirects=True
    )
    assert second.status_code == 200 and second.request.path == "/applications/mine"
    assert "该申请已经提交过了" in second.get_data(as_text=True)
    assert len(rows(ProcessInstance)) == 1
    assert rows(Draft) == []


def test_two_submits_at_the_same_moment_start_one_application(app, client, applicant, rows):
    """Two requests with the same cookie race: one starts the application, the other is told
    it went in already (the draft is consumed in the submitting transaction)."""
    fill_and_confirm(client)
    cookie, csrf = client.get_cookie("session").value, token(client)
    answers: list[int] = []

    def click() -> None:
        racer = app.test_client()
        racer.set_cookie("session", cookie)
        answer = racer.post(f"/applications/new/{KEY}/submit", data={"csrf_token": csrf})
        answers.append(answer.headers["Location"].endswith("/applications/mine"))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=60)
    assert sorted(answers) == [False, True]
    assert len(rows(ProcessInstance)) == 1


def test_a_3000_character_employer_is_kept_on_the_server_not_in_the_cookie(client, applicant, rows):
    """A value far beyond a cookie's 4 KB: refused by length next to its field, yet kept in the
    draft (the form shows it again), the cookie stays small; corrected, it goes through."""
    long_text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
    answer = post(
        client, f"/applications/new/{KEY}", {**form(employer=long_text), **uploads(*GOOD_FILES)}
    )
    assert answer.status_code == 422 and field_errors(answer.get_data(as_text=True), "employer")
    assert len(client.get_cookie("session").value) < 1024
    assert long_text in client.get(f"/applications/new/{KEY}").get_data(as_text=True)

    employer = long_text[:100]  # the longest the form takes
    fill_and_confirm(client, employer=employer)
    assert employer in client.get(f"/applications/new/{KEY}/confirm").get_data(as_text=True)
    reference = submit(client)
    (row,) = rows(ProcessInstance, ProcessInstance.reference == reference)
    (apply_task,) = rows(HumanTask, HumanTask.instance_id == row.id)
    assert apply_task.submitted["employer"] == employer


@pytest.mark.parametrize("number", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_a_number_that_is_not_finite_is_refused_next_to_its_field(client, applicant, rows, number):
    """NaN or infinity typed into a number field: 422 naming that field; submitting the draft
    anyway is refused too (never a server error), and nothing is started."""
    client.get("/lang/en")
    answer = post(
        client, f"/applications/new/{KEY}", {**form(monthly_debt=number), **uploads(*GOOD_FILES)}
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert field_errors(page, "monthly_debt") == ["must be a finite number"]
    assert not field_errors(page, "monthly_income")
    forced = post(client, f"/applications/new/{KEY}/submit")
    assert forced.status_code == 422 and field_errors(forced.get_data(as_text=True), "monthly_debt")
    assert rows(ProcessInstance) == []


def test_a_number_that_is_not_finite_is_refused_by_the_api_naming_the_field(
    app, client, people, deployed, rows
):
    """`{"amount": NaN}` in the JSON body: 422 naming amount, nothing started."""
    people("bob")
    with app.app_context():
        secret = api_tokens.issue(db.session, "bob", "test")
        db.session.commit()
    for number in ("NaN", "Infinity", "-Infinity"):
        body = '{"type": "sample_approval", "data": {"applicant_name": "张三", "amount": NUMBER,'
        body += ' "purpose": "travel"}}'
        body = body.replace("NUMBER", number)  # JSON has no NaN, so no json.dumps here
        answer = client.post(
            "/api/applications",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 422
        assert answer.get_json()["fields"] == [
            {"field": "amount", "message": "must be a finite number"}
        ]
    assert rows(ProcessInstance) == []


def test_drafts_of_two_applicants_and_of_two_types_stay_apart(client, applicant, sign_in, rows):
    """alice's loan draft is not her card form, nor bob's loan; each finds only their own."""
    fill_and_confirm(client, employer="爱丽丝公司")
    assert "爱丽丝公司" not in client.get("/applications/new/credit_card").get_data(as_text=True)
    sign_in("bob")
    assert "爱丽丝公司" not in client.get(f"/applications/new/{KEY}").get_data(as_text=True)
    mine = client.get(f"/applications/new/{KEY}/confirm")  # bob has nothing to confirm
    assert mine.status_code == 302 and mine.headers["Location"].endswith(f"/new/{KEY}")
    post(client, f"/applications/new/{KEY}", form(employer="鲍勃公司"))  # no documents: 422
    sign_in("alice")
    page = client.get(f"/applications/new/{KEY}/confirm").get_data(as_text=True)
    assert "爱丽丝公司" in page and "鲍勃公司" not in page
    assert sorted((d.owner, d.bundle_key) for d in rows(Draft)) == [
        ("alice", KEY),
        ("bob", KEY),
    ]


def signed_in_again(client, app, sign_in, username: str) -> None:
    """`sign_in` after a sign-out: the new session carries the account's new session version."""
    sign_in(username)
    with app.app_context():
        version = db.session.scalar(select(User.session_version).where(User.username == username))
    with client.session_transaction() as stored:
        stored[access.SESSION_VERSION] = version or 0


def test_a_draft_survives_signing_out_and_back_in(client, app, applicant, sign_in, rows):
    """The draft is on the server: after signing out and in again it is still there and is
    submitted as filled in."""
    fill_and_confirm(client, employer="上海某贸易有限公司")
    post(client, "/auth/logout")
    assert client.get(f"/applications/new/{KEY}/confirm").status_code == 302  # signed out
    signed_in_again(client, app, sign_in, "alice")
    page = client.get(f"/applications/new/{KEY}/confirm").get_data(as_text=True)
    assert "上海某贸易有限公司" in page and "身份证.png" in page
    reference = submit(client)
    (row,) = rows(ProcessInstance, ProcessInstance.reference == reference)
    (apply_task,) = rows(HumanTask, HumanTask.instance_id == row.id)
    assert apply_task.submitted["employer"] == "上海某贸易有限公司"
    assert len(apply_task.submitted["documents"]) == 2


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("setup.pdf", EXE, "只接受 PDF、JPEG 和 PNG 文件"),
        ("notes.pdf", b"just some text pretending to be a PDF", "只接受 PDF、JPEG 和 PNG 文件"),
        ("huge.pdf", PDF + b"0" * 2048, "大于"),
    ],
)
def test_refused_upload_is_named_next_to_the_documents_field(
    client, applicant, rows, app, name, content, reason
):
    """What the bytes are decides, not the name; too large is refused; the file is named."""
    app.extensions["approval"] = dataclasses.replace(
        app.extensions["approval"], max_upload_bytes=2048
    )
    files = (("id_card", "id.png", png()), ("income_proof", name, content))
    answer = post(client, f"/applications/new/{KEY}", {**form(), **uploads(*files)})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    (error,) = [e for e in field_errors(page, "documents") if name in e]
    assert reason in error
    assert [d.name for d in rows(Document)] == ["id.png"]


@pytest.mark.parametrize(
    "key", ["personal_loan", "credit_card", "enterprise_loan", "sample_approval"]
)
def test_every_shipped_type_draws_its_form(client, applicant, key):
    """Each type's first form is found in its diagram and drawn from its schema."""
    answer = client.get(f"/applications/new/{key}")
    assert answer.status_code == 200
    assert (REPO / "forms" / key / "apply-schema.json").exists()
    title = json.loads((REPO / "forms" / key / "apply-schema.json").read_text())["title"]
    assert title in answer.get_data(as_text=True)


def test_apply_pages_speak_english_on_request(client, applicant):
    """Chinese by default; English after choosing it."""
    assert "选择申请类型" in client.get("/applications/").get_data(as_text=True)
    client.get("/lang/en")
    page = client.get("/applications/").get_data(as_text=True)
    assert "Choose what to apply for" in page and "Start" in page


def test_staff_cannot_apply_and_strangers_must_sign_in(client, sign_in, deployed):
    assert client.get("/applications/").status_code == 302  # to the sign-in page
    sign_in("rui", "credit_reviewer")
    assert client.get(f"/applications/new/{KEY}").status_code == 403


def test_type_deployed_after_the_app_started_is_offered_at_once(
    client, applicant, session_factory, settings, tmp_path
):
    """A new bundle folder deployed while the app runs appears in the list, no restart."""
    assert "pet_loan" not in client.get("/applications/").get_data(as_text=True)
    shutil.copytree(REPO / "processes" / "sample_approval", tmp_path / "processes" / "pet_loan")
    shutil.copytree(REPO / "forms" / "sample_approval", tmp_path / "forms" / "pet_loan")
    with session_factory.begin() as session:
        copy = dataclasses.replace(settings, forms_dir=tmp_path / "forms")
        bundles.deploy_path(session, copy, tmp_path / "processes", "owen")
    page = client.get("/applications/").get_data(as_text=True)
    assert 'href="/applications/new/pet_loan"' in page
    assert client.get("/applications/new/pet_loan").status_code == 200


# --- after submission: my applications, withdrawing, documents ------------------------------


def submitted(client, **changes) -> ProcessInstance:
    fill_and_confirm(client, **changes)
    reference = submit(client)
    return reference


def instance_of(rows, reference: str) -> ProcessInstance:
    (row,) = rows(ProcessInstance, ProcessInstance.reference == reference)
    return row


def test_my_applications_show_number_type_and_current_step(client, applicant, rows, work):
    """Processing until the worker ran, then the reviewer's step by name; newest first."""
    first = submitted(client)
    page = client.get("/applications/mine").get_data(as_text=True)
    assert first in page and "受理中" in page and "个人贷款申请" in page
    work.drain()
    second = submitted(client)
    page = client.get("/applications/mine").get_data(as_text=True)
    assert page.index(second) < page.index(first)
    assert "处理中: 人工审核 Credit review" in page


def test_applicant_withdraws_before_any_review(client, applicant, rows, work, app):
    """Withdrawn before review: cancelled, its open task closed, the event audited."""
    reference = submitted(client)
    work.drain()
    row = instance_of(rows, reference)
    answer = post(client, f"/applications/{row.id}/withdraw", follow_redirects=True)
    assert "已撤回" in answer.get_data(as_text=True)
    assert instance_of(rows, reference).status == "cancelled"
    states = {t.element_id: t.state for t in rows(HumanTask, HumanTask.instance_id == row.id)}
    assert states == {"Task_apply": "completed", "Task_review": "cancelled"}
    with app.app_context():
        from web.extensions import db

        kinds = [e.kind for e in audit.events_for_instance(db.session, row.id)]
    assert kinds[-1] == "withdraw"


@pytest.mark.parametrize("reviewer_acts", ["claim", "complete"])
def test_withdrawal_is_refused_once_a_reviewer_has_started(
    client, applicant, rows, work, people, session_factory, settings, reviewer_acts
):
    """After a reviewer claimed (or decided) a task the application cannot be withdrawn."""
    reference = submitted(client)
    work.drain()
    row = instance_of(rows, reference)
    people("rui", "credit_reviewer")
    (task,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    with session_factory.begin() as session:
        if reviewer_acts == "claim":
            inbox.claim(session, settings, task.id, person("rui"))
        else:
            data = {"review_decision": "return", "review_opinion": "请补充银行流水"}
            runtime.complete_task(session, settings, task.id, person("rui"), data)
    assert "撤回</button>" not in client.get("/applications/mine").get_data(as_text=True)
    answer = post(client, f"/applications/{row.id}/withdraw", follow_redirects=True)
    assert "审核员已开始处理此申请，不能再撤回" in answer.get_data(as_text=True)
    assert instance_of(rows, reference).status != "cancelled"


def test_document_is_served_to_its_owner_as_sniffed_with_nosniff(client, applicant, rows):
    """The owner's PNG comes back as image/png, inline, never sniffed by the browser."""
    submitted(client)
    (doc,) = [d for d in rows(Document) if d.content_type == "image/png"]
    answer = client.get(f"/applications/documents/{doc.id}")
    assert answer.status_code == 200 and answer.data == png()
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Disposition"].startswith("inline")


def test_reviewer_of_the_application_may_open_its_documents(client, applicant, rows, work, sign_in):
    """Staff whose group works on the application see its documents (the review preview)."""
    submitted(client)
    work.drain()
    (doc,) = [d for d in rows(Document) if d.content_type == "application/pdf"]
    sign_in("rui", "credit_reviewer")
    assert client.get(f"/applications/documents/{doc.id}").data == PDF
    sign_in("card", "card_center")
    assert client.get(f"/applications/documents/{doc.id}").status_code == 404


def test_someone_elses_application_and_document_do_not_exist_for_me(
    client, applicant, rows, sign_in
):
    """Another applicant gets 404 for my document, my submitted page and my withdraw."""
    reference = submitted(client)
    row = instance_of(rows, reference)
    doc = rows(Document)[0]
    sign_in("bob")
    assert client.get(f"/applications/documents/{doc.id}").status_code == 404
    assert client.get(f"/applications/{row.id}/submitted").status_code == 404
    assert post(client, f"/applications/{row.id}/withdraw").status_code == 404
    assert reference not in client.get("/applications/mine").get_data(as_text=True)
    assert instance_of(rows, reference).status == "running"


# --- the applicant's own tasks ---------------------------------------------------------------


def returned_for_information(client, rows, work, people, session_factory, settings) -> tuple:
    """An application the credit reviewer sent back; (instance row, the applicant's task)."""
    row = instance_of(rows, submitted(client))
    work.drain()
    people("rui", "credit_reviewer")
    (review,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    with session_factory.begin() as session:
        data = {"review_decision": "return", "review_opinion": "请补充银行流水"}
        runtime.complete_task(session, settings, review.id, person("rui"), data)
    work.drain()
    (task,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    assert task.element_id == "Task_supplement"
    return row, task


def test_returned_application_is_completed_with_the_data_prefilled_and_a_new_document(
    client, applicant, rows, work, people, session_factory, settings
):
    """补件: the form shows the current data and documents; a bad value is named next to its
    field; resubmitted with a bank statement, the task is done and the reviewer has it again."""
    row, task = returned_for_information(client, rows, work, people, session_factory, settings)
    url = f"/applications/{row.id}/task/{task.id}"
    assert f'href="{url}"' in client.get("/applications/mine").get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    assert 'value="北京某科技有限公司"' in page and "身份证.png" in page

    statement = uploads(("bank_statement", "statement.pdf", PDF + b"% statement\n"))
    refused = post(client, url, {**form(mobile="12345"), **statement})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and field_errors(page, "mobile")
    assert "statement.pdf" in page  # the upload is kept for the next try

    done = post(client, url, form(monthly_income="16000"), follow_redirects=True)
    assert "已完成" in done.get_data(as_text=True)
    (task,) = rows(HumanTask, HumanTask.id == task.id)
    assert task.state == "completed" and task.submitted["monthly_income"] == 16000
    kinds = sorted(d["kind"] for d in task.submitted["documents"])
    assert kinds == ["bank_statement", "id_card", "income_proof"]
    assert len(rows(Document, Document.instance_id == row.id)) == 3
    assert rows(Draft) == []  # the answer's draft went with the completed task
    work.drain()
    open_now = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    assert [t.element_id for t in open_now] == ["Task_review"]

    again = post(client, url, form(), follow_redirects=True)
    assert "此任务已无法完成" in again.get_data(as_text=True)


def test_reviewers_task_is_not_the_applicants_to_open(client, applicant, rows, work):
    """The reviewer's task of my own application does not exist on my task pages."""
    row = instance_of(rows, submitted(client))
    work.drain()
    (review,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    assert client.get(f"/applications/{row.id}/task/{review.id}").status_code == 404


def approved(client, rows, work, people, session_factory, settings) -> tuple:
    """An application the credit reviewer approved; (instance row, the signing task)."""
    row = instance_of(rows, submitted(client))
    work.drain()
    people("rui", "credit_reviewer")
    (review,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    data = {"review_decision": "approve", "review_amount": 80000, "review_term_months": 36}
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, review.id, person("rui"), data)
    work.drain()
    (task,) = rows(HumanTask, HumanTask.instance_id == row.id, HumanTask.state == "ready")
    assert task.element_id == "Task_sign_contract"
    return row, task


def sms_codes(http_stub) -> list[str]:
    texts = [r.json["text"] for r in http_stub.requests if r.path.startswith("/sms")]
    return [m.group(0) for t in texts if (m := re.search(r"\b\d{6}\b", t)) and "验证码" in t]


def test_contract_is_signed_only_with_the_sms_code_sent_to_the_applicant(
    client, sign_in, people, deployed, rows, work, session_factory, settings, http_stub
):
    """The terms are shown; no code or a wrong one is refused next to the code field; the
    texted code signs, and the application ends as signed."""
    people("alice", phone="13800138000")
    sign_in("alice")
    row, task = approved(client, rows, work, people, session_factory, settings)
    url = f"/applications/{row.id}/task/{task.id}"
    page = client.get(url).get_data(as_text=True)
    assert "合同条款" in page and "批准金额 Approved: 80000 元" in page

    signature = {
        "accept_terms": "on", "signer_name": "张三", "disbursement_account": "6222020200112233445"
    }  # fmt: skip
    refused = post(client, url, {**signature, "code": "000000"})
    assert refused.status_code == 422
    assert field_errors(refused.get_data(as_text=True), "code") == ["尚未发送验证码，请重新获取"]

    post(client, f"{url}/code")
    (code,) = sms_codes(http_stub)
    wrong = "111111" if code != "111111" else "222222"
    refused = post(client, url, {**signature, "code": wrong})
    assert field_errors(refused.get_data(as_text=True), "code") == ["验证码错误"]
    assert rows(HumanTask, HumanTask.id == task.id)[0].state == "ready"

    post(client, url, {**signature, "code": code})
    assert rows(HumanTask, HumanTask.id == task.id)[0].state == "completed"
    work.drain()
    assert instance_of(rows, row.reference).status == "completed"
    assert "已签约 Contract signed" in client.get("/applications/mine").get_data(as_text=True)


def test_contract_is_signed_with_the_authenticator_code_of_a_totp_user(
    client, sign_in, people, deployed, rows, work, session_factory, settings
):
    """A TOTP user signs with the app's code; no SMS is offered."""
    secret = second_factor.new_totp_secret()
    people("alice", second_factor="totp", totp_secret=secret, phone="13800138000")
    sign_in("alice")
    row, task = approved(client, rows, work, people, session_factory, settings)
    url = f"/applications/{row.id}/task/{task.id}"
    page = client.get(url).get_data(as_text=True)
    assert "身份验证器" in page and "发送短信验证码" not in page
    signature = {
        "accept_terms": "on",
        "signer_name": "张三",
        "disbursement_account": "6222020200112233445",
    }
    post(client, url, {**signature, "code": second_factor.totp_code(secret)})
    assert rows(HumanTask, HumanTask.id == task.id)[0].state == "completed"

"""A whole personal loan in Chromium: an applicant registers, turns on an authenticator app,
signs in with the picture test and a code, applies with documents, a reviewer and a branch
manager (different people, each signing in with a code) approve, and the applicant reads the
result and signs the contract. Screenshots of each key page go to test-artifacts/."""

from __future__ import annotations

import io
import re
import time

import pyotp
import pytest
from PIL import Image

from engine import accounts, audit
from engine.models import AuditEvent, ProcessInstance, User
from web.auth import captcha_image
from web.extensions import db

CAPTCHA = "K7MPX"
PASSWORD = "correct-horse-9"
REVIEWER_SECRET = pyotp.random_base32()
MANAGER_SECRET = pyotp.random_base32()


class Codes:
    """TOTP codes that are never reused: each sign-in takes the next 30-second step."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def next(self, secret: str) -> str:
        now_step = int(time.time() // 30)
        step = max(now_step, self.last.get(secret, -1) + 1)
        while step > now_step + 1:  # the server accepts one step ahead, not two: wait
            time.sleep(1)
            now_step = int(time.time() // 30)
        self.last[secret] = step
        return pyotp.TOTP(secret).at(step * 30)


@pytest.fixture
def bank(live_server, http_stub, monkeypatch):
    """Staff with authenticator apps, a credit bureau that knows the applicant, a known picture."""
    monkeypatch.setattr(captcha_image, "new_text", lambda: CAPTCHA)

    def respond(request):
        if request.path.startswith("/bureau"):
            report = {"score": 720, "overdue_accounts": 0, "total_debt": 20000}
            return 200, {**report, "monthly_debt_payment": 1000}
        return 200, {"ok": True}

    http_stub.respond = respond
    settings = live_server.app.extensions["approval"]
    with live_server.app.app_context():
        for username, group, secret in (
            ("rui", "credit_reviewer", REVIEWER_SECRET),
            ("meng", "branch_manager", MANAGER_SECRET),
        ):
            user = accounts.add_user(db.session, settings, username, [group], PASSWORD)
            user.second_factor, user.totp_secret = "totp", secret
        db.session.commit()
    return live_server


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def submit(page, selector: str) -> None:
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        # The keyboard, not a mouse click: Chromium's PDF preview on the reviewer's page is a
        # plugin frame that can take a click meant for the button below it.
        page.locator(selector).first.press("Enter")


def sign_in(page, username: str, secret: str, codes: Codes) -> None:
    page.goto("/auth/login")
    page.fill("[name=username]", username)
    page.fill("[name=password]", PASSWORD)
    page.fill("[name=captcha]", CAPTCHA.lower())  # either case counts
    submit(page, "form[action$='/auth/login'] button[type=submit]")
    assert page.url.endswith("/auth/second-factor")
    page.fill("[name=code]", codes.next(secret))
    submit(page, "form:has([name=code]) button[type=submit]")


def register_with_authenticator(page, screenshot, codes: Codes) -> str:
    page.goto("/auth/register")
    screenshot(page, "register")
    page.fill("[name=username]", "xiaoming")
    page.fill("[name=display_name]", "王小明")
    page.fill("[name=phone]", "13800138000")
    page.fill("[name=email]", "xiaoming@example.com")
    page.fill("[name=password]", PASSWORD)
    page.fill("[name=password_again]", PASSWORD)
    page.fill("[name=captcha]", CAPTCHA)
    submit(page, "form[action$='/auth/register'] button[type=submit]")
    page.goto("/auth/security")
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.fill("form:has([name=totp_code]) [name=password]", PASSWORD)
    page.fill("[name=totp_code]", codes.next(secret))
    screenshot(page, "enrol-totp")
    submit(page, "form:has([name=totp_code]) button[type=submit]")
    submit(page, "header form button")  # sign out
    return secret


def apply_for_a_loan(page, screenshot, tmp_path) -> str:
    page.goto("/applications/")
    page.locator("a[href$='/applications/new/personal_loan']").click()
    form = {
        "applicant_name": "王小明",
        "id_number": "110101198503151235",
        "mobile": "13800138000",
        "amount": "150000",
        "employer": "北京某科技有限公司",
        "employment_years": "6",
        "monthly_income": "30000",
        "monthly_debt": "1000",
    }
    for name, value in form.items():
        page.fill(f"[name={name}]", value)
    page.check("input[name=term_months][value='36']")
    page.select_option("[name=purpose]", "renovation")
    page.check("input[name=employment_type][value='employed']")
    page.select_option("[name=housing]", "owned")
    page.check("[name=consent]")
    (tmp_path / "id.png").write_bytes(png())
    (tmp_path / "income.pdf").write_bytes(PDF)
    page.select_option("[name=documents-kind-0]", "id_card")
    page.set_input_files("[name=documents-file-0]", str(tmp_path / "id.png"))
    page.select_option("[name=documents-kind-1]", "income_proof")
    page.set_input_files("[name=documents-file-1]", str(tmp_path / "income.pdf"))
    screenshot(page, "application-form")
    submit(page, "form[enctype] button[type=submit]")
    assert page.url.endswith("/confirm")
    assert "150000" in page.content().replace(",", "")
    screenshot(page, "confirm")
    submit(page, "form[action$='/submit'] button[type=submit]")
    assert page.url.endswith("/submitted")
    reference = re.search(r"PL\d{14}", page.content()).group(0)
    screenshot(page, "submitted")
    return reference


def decide(page, screenshot, reference: str, prefix: str, name: str) -> None:
    """From the inbox: open the application's task, claim it, approve 150,000 over 36 months."""
    page.goto("/inbox/")
    deadline = time.time() + 30
    while page.locator(f"tr:has-text('{reference}') a").count() == 0:  # the worker is on it
        assert time.time() < deadline, f"{reference} never reached {name}'s inbox"
        time.sleep(0.5)
        page.reload()
    screenshot(page, f"inbox-{name}")
    page.locator(f"tr:has-text('{reference}') a").first.click()
    submit(page, "form[action$='/claim'] button")
    page.check(f"input[name={prefix}_decision][value=approve]")
    page.fill(f"[name={prefix}_opinion]", f"{name}：资料齐全，同意")
    for field, value in ((f"{prefix}_amount", "150000"),):
        if page.locator(f"[name={field}]").count():
            page.fill(f"[name={field}]", value)
    term = page.locator(f"[name={prefix}_term_months]")
    if term.count():
        if term.first.get_attribute("type") == "radio":
            page.check(f"input[name={prefix}_term_months][value='36']")
        else:
            page.select_option(f"[name={prefix}_term_months]", "36")
    screenshot(page, f"task-{name}")
    submit(page, "form[action$='/complete'] button[type=submit]")
    screenshot(page, f"decided-{name}")
    assert page.locator(".field-error").count() == 0


def second_factor_of(server, username: str) -> str:
    with server.app.app_context():
        return db.session.query(User).filter_by(username=username).one().second_factor


def instance_row(server, reference: str) -> ProcessInstance:
    with server.app.app_context():
        return db.session.query(ProcessInstance).filter_by(reference=reference).one()


def events(server, instance_id: int) -> list[str]:
    with server.app.app_context():
        stream = audit.instance_stream(instance_id)
        return [
            e.kind
            for e in db.session.query(AuditEvent).filter_by(stream=stream).order_by(AuditEvent.id)
        ]


def wait_for(page, url: str, text: str, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    page.goto(url)
    while text not in page.content():
        assert time.time() < deadline, f"{url} never showed {text!r}"
        time.sleep(0.5)
        page.reload()


def test_a_personal_loan_from_registration_to_the_signed_contract(
    bank, new_page, screenshot, tmp_path
):
    """Registration, captcha + TOTP sign-ins, application, two approval levels, result, signing."""
    codes = Codes()
    applicant = new_page()
    secret = register_with_authenticator(applicant, screenshot, codes)
    assert second_factor_of(bank, "xiaoming") == "totp"
    sign_in(applicant, "xiaoming", secret, codes)
    screenshot(applicant, "signed-in")
    reference = apply_for_a_loan(applicant, screenshot, tmp_path)

    reviewer = new_page()
    sign_in(reviewer, "rui", REVIEWER_SECRET, codes)
    decide(reviewer, screenshot, reference, "review", "rui")
    manager = new_page()
    sign_in(manager, "meng", MANAGER_SECRET, codes)
    decide(manager, screenshot, reference, "manager", "meng")

    errors = []
    applicant.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    wait_for(applicant, f"/track/{reference}", "meng")
    applicant.locator("#diagram .djs-element.current").first.wait_for()  # bpmn-js drew it
    assert [e for e in errors if "favicon" not in e] == []  # nothing refused by the policy
    screenshot(applicant, "progress")
    assert "rui：资料齐全，同意" in applicant.content()
    applicant.locator("a[href*='/task/']").first.click()
    applicant.check("[name=accept_terms]")
    applicant.fill("[name=signer_name]", "王小明")
    applicant.fill("[name=disbursement_account]", "6222020200112233")
    applicant.fill("[name=code]", codes.next(secret))
    screenshot(applicant, "sign-contract")
    submit(applicant, "form[enctype] button[type=submit]")
    wait_for(applicant, f"/track/{reference}", 'data-testid="result"')
    screenshot(applicant, "result")
    assert applicant.get_by_test_id("result").count() == 1
    row = instance_row(bank, reference)
    assert (row.status, row.started_by) == ("completed", "xiaoming")
    assert [e for e in events(bank, row.id) if e in ("claim", "complete")] == [
        "complete",
        "claim",
        "complete",
        "claim",
        "complete",
        "complete",
    ]

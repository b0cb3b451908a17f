"""Signing in through the real forms: captcha, password, lock-out, TOTP and SMS, registration."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from engine import accounts, clock
from engine.directory import add_user
from engine.models import AuditEvent, User
from web import create_app
from web.auth import captcha_image

PASSWORD = "correct-horse-42"
CAPTCHA = "AB2CD"
#: Typed as a person might: case does not matter.
TYPED = CAPTCHA.lower()


@pytest.fixture(autouse=True)
def _known_captcha(monkeypatch):
    """The picture shows a known text, so a test can answer it (the check itself is real)."""
    monkeypatch.setattr(captcha_image, "new_text", lambda: CAPTCHA)


def _account(app, username, *groups, password=PASSWORD, **fields) -> None:
    from web.extensions import db

    with app.app_context():
        user = add_user(db.session, username, list(groups))
        accounts.set_password(user, password)
        for name, value in fields.items():
            setattr(user, name, value)
        db.session.commit()


def _user(app, username) -> User:
    from web.extensions import db

    with app.app_context():
        return db.session.scalar(select(User).where(User.username == username))


def _audit_kinds(app, username) -> list[str]:
    from web.extensions import db

    with app.app_context():
        query = select(AuditEvent.kind).where(AuditEvent.stream == f"user:{username}")
        return list(db.session.scalars(query.order_by(AuditEvent.seq)))


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _post(client, url, data, page=None):
    """POST like the browser: the CSRF token comes from the form the user looked at."""
    form_page = client.get(page or url).get_data(as_text=True)
    return client.post(url, data={"csrf_token": _token(form_page), **data})


def _login(client, username, password=PASSWORD, captcha=TYPED, next_=""):
    page = client.get("/auth/login" + (f"?next={next_}" if next_ else "")).get_data(as_text=True)
    assert client.get("/auth/captcha.png").mimetype == "image/png"
    data = {"csrf_token": _token(page), "username": username, "password": password}
    return client.post("/auth/login", data=data | {"captcha": captcha, "next": next_})


def _field_errors(html: str, field: str) -> str:
    """The text of the field `field` in the form: its label, input and errors beside it."""
    if f'data-field="{field}"' not in html:
        return ""
    after = html.split(f'data-field="{field}"', 1)[1]
    return after.split("data-field=")[0].split("<button")[0]


def _signed_in(client) -> bool:
    with client.session_transaction() as sess:
        return "_user_id" in sess


def test_applicant_signs_in_with_captcha_and_password(app, client):
    """An applicant without a second factor is in after the password, and it is audited."""
    _account(app, "alice")
    response = _login(client, "alice")
    assert response.status_code == 302 and response.location == "/"
    assert _signed_in(client)
    assert _audit_kinds(app, "alice") == ["password_accepted", "login"]


def test_staff_signs_in_with_the_code_of_the_authenticator_app(app, client):
    """A reviewer with TOTP is asked for the app's code, then lands where they wanted to go."""
    secret = pyotp.random_base32()
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=secret)
    response = _login(client, "rui", next_="/track/")
    assert response.location == "/auth/second-factor" and not _signed_in(client)
    page = client.get("/auth/second-factor").get_data(as_text=True)
    assert "身份验证器" in page
    client.get("/lang/en")
    assert "authenticator app shows" in client.get("/auth/second-factor").get_data(as_text=True)
    code = pyotp.TOTP(secret).at(clock.now())
    response = _post(client, "/auth/second-factor", {"action": "verify", "code": code})
    assert response.status_code == 302 and response.location == "/track/"
    assert _signed_in(client)


def test_wrong_authenticator_code_is_refused_beside_the_field(app, client):
    """A wrong code keeps the person out and says so next to the code field."""
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=pyotp.random_base32())
    _login(client, "rui")
    response = _post(client, "/auth/second-factor", {"action": "verify", "code": "000000"})
    assert response.status_code == 422
    assert "验证码错误" in _field_errors(response.get_data(as_text=True), "code")
    assert not _signed_in(client) and "second_factor_failed" in _audit_kinds(app, "rui")


def test_wrong_captcha_is_a_field_error_and_the_password_is_not_tried(app, client):
    """A wrong picture answer is reported on the captcha field and costs no password try."""
    _account(app, "alice")
    response = _login(client, "alice", captcha="zzzzz")
    assert response.status_code == 422
    assert "与图片中的字符不符" in _field_errors(response.get_data(as_text=True), "captcha")
    assert _user(app, "alice").failed_logins == 0 and not _signed_in(client)


def test_a_captcha_answer_works_only_once(app, client):
    """Posting again without loading a new picture is refused even with the right answer."""
    _account(app, "alice")
    assert _login(client, "alice", password="wrong-password-1").status_code == 422
    page = client.get("/auth/login").get_data(as_text=True)
    data = {"csrf_token": _token(page), "username": "alice", "password": PASSWORD}
    response = client.post("/auth/login", data=data | {"captcha": CAPTCHA})
    assert response.status_code == 422 and not _signed_in(client)


def test_wrong_password_and_unknown_user_get_the_same_message(app, client):
    """The message does not tell whether the username exists."""
    _account(app, "alice")
    wrong = _login(client, "alice", password="wrong-password-1").get_data(as_text=True)
    unknown = _login(client, "nobody").get_data(as_text=True)
    assert "用户名或密码错误" in _field_errors(wrong, "password")
    assert _field_errors(wrong, "password") == _field_errors(unknown, "password")


def test_account_locks_after_repeated_failures_and_unlocks_later(app, client, settings):
    """Five wrong passwords lock the account, even against the right one, until time passes."""
    _account(app, "alice")
    for _ in range(settings.login_max_failures):
        assert _login(client, "alice", password="wrong-password-1").status_code == 422
    response = _login(client, "alice")
    assert response.status_code == 422 and "账户已锁定" in response.get_data(as_text=True)
    kinds = _audit_kinds(app, "alice")
    assert kinds.count("login_failed") == settings.login_max_failures
    assert "locked" in kinds and kinds[-1] == "login_refused_locked"
    clock.travel(timedelta(minutes=settings.lockout_minutes, seconds=1))
    assert _login(client, "alice").status_code == 302 and _signed_in(client)


@pytest.fixture
def sms_app(settings, http_stub):
    return create_app(dataclasses.replace(settings, sms_url=http_stub.url + "/sms"))


def _sms_code(http_stub) -> str:
    return re.search(r"\d{6}", http_stub.requests[-1].json["text"]).group()


def _sms_login(client, http_stub):
    _login(client, "alice")
    response = _post(client, "/auth/second-factor", {"action": "send"})
    assert response.status_code == 302
    assert http_stub.requests[-1].json["to"] == "13800138000"
    return _sms_code(http_stub)


def test_sms_code_signs_in_through_the_gateway(sms_app, http_stub):
    """The gateway receives a POST with the code; typing it back signs the applicant in."""
    client = sms_app.test_client()
    _account(sms_app, "alice", second_factor="sms", phone="13800138000")
    code = _sms_login(client, http_stub)
    response = _post(client, "/auth/second-factor", {"action": "verify", "code": code})
    assert response.status_code == 302 and _signed_in(client)


def test_sms_code_expires_after_ten_minutes(sms_app, http_stub):
    """A code typed eleven minutes later is refused as expired."""
    client = sms_app.test_client()
    _account(sms_app, "alice", second_factor="sms", phone="13800138000")
    code = _sms_login(client, http_stub)
    clock.travel(timedelta(minutes=11))
    _login(client, "alice")  # the half-done sign-in itself lasts five minutes
    response = _post(client, "/auth/second-factor", {"action": "verify", "code": code})
    assert response.status_code == 422 and "验证码已过期" in response.get_data(as_text=True)


def test_five_wrong_sms_codes_lock_the_person_out(sms_app, http_stub, settings):
    """After five wrong codes the right one no longer helps: the account is locked."""
    client = sms_app.test_client()
    _account(sms_app, "alice", second_factor="sms", phone="13800138000")
    code = _sms_login(client, http_stub)
    wrong = "111111" if code != "111111" else "222222"
    for _ in range(settings.login_max_failures):
        response = _post(client, "/auth/second-factor", {"action": "verify", "code": wrong})
    assert response.status_code == 302 and response.location == "/auth/login"
    assert _login(client, "alice").status_code == 422 and not _signed_in(client)


def test_without_a_gateway_the_sms_choice_says_why(app, client):
    """With no SMS gateway configured, the security page explains SMS is unavailable."""
    _account(app, "alice", phone="13800138000")
    _login(client, "alice")
    page = client.get("/auth/security").get_data(as_text=True)
    assert "未配置短信网关" in page and 'value="sms_send"' not in page


def test_staff_without_a_second_factor_must_enrol_an_authenticator_first(app, client):
    """A reviewer without TOTP is held on the security page until a first code confirms it."""
    _account(app, "rui", "credit_reviewer")
    response = _login(client, "rui", next_="/track/")
    assert response.location.startswith("/auth/security")
    assert client.get("/").location == "/auth/security"
    page = client.get("/auth/security").get_data(as_text=True)
    assert "<svg" in page
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = pyotp.TOTP(secret).at(clock.now())
    response = _post(
        client,
        "/auth/security",
        {"action": "totp", "password": PASSWORD, "totp_code": code, "next": "/track/"},
    )
    assert response.location == "/track/"
    assert _user(app, "rui").second_factor == "totp" and _user(app, "rui").totp_secret == secret
    assert "/auth/security" not in (client.get("/").location or "")  # free to go anywhere now
    assert "totp_enrolled" in _audit_kinds(app, "rui")


def test_registration_errors_appear_next_to_their_fields(app, client):
    """A taken username, a weak password and a bad phone number are each shown by their field."""
    _account(app, "alice")
    client.get("/auth/captcha.png")
    data = {"username": "alice", "display_name": "Alice", "phone": "12345", "email": ""}
    response = _post(
        client,
        "/auth/register",
        data | {"password": "short1", "password_again": "short1", "captcha": CAPTCHA},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "用户名已被占用" in _field_errors(html, "username")
    assert "至少需要 10 个字符" in _field_errors(html, "password")
    assert _field_errors(html, "phone")
    assert 'value="alice"' in html


def test_registration_creates_and_signs_in_an_applicant(app, client):
    """A new applicant is registered with a hashed password and signed in at once."""
    client.get("/auth/captcha.png")
    data = {
        "username": "carol",
        "display_name": "Carol",
        "phone": "13800138000",
        "email": "c@example.com",
    }
    response = _post(
        client,
        "/auth/register",
        data | {"password": PASSWORD, "password_again": PASSWORD, "captcha": CAPTCHA},
    )
    assert response.status_code == 302 and _signed_in(client)
    user = _user(app, "carol")
    assert user.group_keys == set() and user.password_hash.startswith("$argon2id$")
    assert _audit_kinds(app, "carol") == ["registered", "login"]


def test_a_form_posted_without_its_csrf_token_is_refused(app, client):
    """Every form needs the token it was drawn with: without it the answer is 400."""
    _account(app, "alice")
    client.get("/auth/captcha.png")
    response = client.post(
        "/auth/login", data={"username": "alice", "password": PASSWORD, "captcha": CAPTCHA}
    )
    assert response.status_code == 400 and not _signed_in(client)


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookie_is_http_only_lax_and_secure_when_configured(settings, secure):
    """The session cookie cannot be read by scripts, stays on this site, and needs HTTPS if set."""
    app = create_app(dataclasses.replace(settings, secure_cookies=secure))
    _account(app, "alice")
    client = app.test_client()
    response = _login(client, "alice")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) == secure


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_next_never_leads_to_another_site(app, client, target):
    """A `next` pointing away from this site is replaced by the home page."""
    _account(app, "alice")
    assert _login(client, "alice", next_=target).location == "/"


def test_sign_in_starts_a_fresh_session(app, client):
    """Whatever was planted in the session before signing in is gone afterwards."""
    _account(app, "alice")
    with client.session_transaction() as sess:
        sess["planted"] = "by someone else"
    _login(client, "alice")
    with client.session_transaction() as sess:
        assert "planted" not in sess and "_user_id" in sess


def test_sign_out_needs_a_post_and_is_audited(app, client):
    """The top bar's link only asks; the form's button signs out, and it is recorded."""
    _account(app, "alice")
    _login(client, "alice")
    assert "要在此设备上退出智慧审批吗" in client.get("/auth/logout").get_data(as_text=True)
    assert _signed_in(client)
    response = _post(client, "/auth/logout", {})
    assert response.status_code == 302 and not _signed_in(client)
    assert _audit_kinds(app, "alice")[-1] == "logout"


def test_a_protected_page_sends_the_visitor_back_after_signing_in(app, client):
    """Opening a page that needs sign-in leads to the login form and then back to that page."""
    _account(app, "alice")
    response = client.get("/auth/security")
    assert response.status_code == 302 and response.location.startswith("/auth/login?next=")
    assert _login(client, "alice", next_="/auth/security").location == "/auth/security"


def test_signed_in_pages_are_chinese_by_default_and_english_on_request(app, client):
    """The security and sign-out pages follow the chosen language too."""
    _account(app, "alice")
    _login(client, "alice")
    assert "身份验证器应用" in client.get("/auth/security").get_data(as_text=True)
    client.get("/lang/en")
    assert "Authenticator app (TOTP)" in client.get("/auth/security").get_data(as_text=True)
    assert "Sign out of Smart Approval" in client.get("/auth/logout").get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "chinese", "english"),
    [
        ("/auth/login", "登录", "Sign in"),
        ("/auth/register", "注册为申请人", "Register as an applicant"),
    ],
)
def test_pages_are_chinese_by_default_and_english_on_request(client, url, chinese, english):
    """Chinese first; after choosing English the same page is in English."""
    assert chinese in client.get(url).get_data(as_text=True)
    client.get("/lang/en")
    html = client.get(url).get_data(as_text=True)
    assert english in html and chinese not in html


def test_demo_commands_create_accounts_and_print_codes(app, cli_runner):
    """`approval demo users` is repeatable; `approval demo totp` prints the current app code."""
    assert cli_runner("demo", "users").exit_code == 0
    result = cli_runner("demo", "users")
    assert result.exit_code == 0 and accounts.demo_secret("credit") in result.output
    code = cli_runner("demo", "totp", "credit").output.strip()
    assert code == pyotp.TOTP(accounts.demo_secret("credit")).at(clock.now())
    assert cli_runner("demo", "totp", "alice").exit_code == 1


def test_users_add_reads_the_password_from_stdin(app, cli_runner):
    """An administrator creates a staff account without the password on the command line."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from web.cli import cli

    args = ["users", "add", "zhang", "--group", "risk_reviewer", "--password-stdin"]
    result = CliRunner().invoke(
        cli, args, input=PASSWORD + "\n", obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 0, result.output
    assert _user(app, "zhang").group_keys == {"risk_reviewer"}
    client = app.test_client()
    assert _login(client, "zhang").location.startswith("/auth/security")


def test_applicant_turns_on_sms_codes_on_the_security_page(sms_app, http_stub):
    """An applicant types back the enrolment SMS and signs in with SMS codes from then on."""
    client = sms_app.test_client()
    _account(sms_app, "alice", phone="13800138000")
    _login(client, "alice")
    assert _post(client, "/auth/security", {"action": "sms_send"}).status_code == 302
    code = _sms_code(http_stub)
    form = {"action": "sms_confirm", "sms_password": PASSWORD, "sms_code": code}
    response = _post(client, "/auth/security", form)
    assert response.status_code == 302
    assert _user(sms_app, "alice").second_factor == "sms"
    _post(client, "/auth/logout", {}, page="/auth/security")
    assert _login(client, "alice").location == "/auth/second-factor"


# --- what a security review found (each test failed before its fix) ---------------------------


def _cookie(client) -> str:
    return client.get_cookie("session").value


def _wrong_codes(secret, count):
    good = {pyotp.TOTP(secret).at(clock.now(), counter_offset=s) for s in (-1, 0, 1)}
    return [c for c in (f"{i:06d}" for i in range(count + 3)) if c not in good][:count]


def test_a_locked_account_cannot_finish_signing_in_with_a_saved_cookie(app, client, settings):
    """Replaying the half-done sign-in's cookie gives no more code guesses, nor a way in later."""
    secret = pyotp.random_base32()
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=secret)
    _login(client, "rui")
    token, saved = _token(client.get("/auth/second-factor").get_data(as_text=True)), _cookie(client)
    for code in _wrong_codes(secret, settings.login_max_failures + 3):
        client.set_cookie("session", saved)
        client.post("/auth/second-factor", data={"csrf_token": token, "code": code})
    client.set_cookie("session", saved)
    good = pyotp.TOTP(secret).at(clock.now())
    response = client.post("/auth/second-factor", data={"csrf_token": token, "code": good})
    assert response.location == "/auth/login" and not _signed_in(client)
    assert "账户已锁定" in client.get("/auth/login").get_data(as_text=True)
    assert _audit_kinds(app, "rui").count("login_failed") == settings.login_max_failures


def test_the_right_password_does_not_forgive_wrong_codes(app, client, settings):
    """Rounds of (password, a few wrong codes) still add up to the lock-out."""
    secret = pyotp.random_base32()
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=secret)
    wrong = _wrong_codes(secret, settings.login_max_failures - 1)
    for _ in range(5):
        if _login(client, "rui").status_code != 302:
            break  # locked
        token = _token(client.get("/auth/second-factor").get_data(as_text=True))
        for code in wrong:
            client.post("/auth/second-factor", data={"csrf_token": token, "code": code})
    response = _login(client, "rui")
    assert response.status_code == 422 and "账户已锁定" in response.get_data(as_text=True)


def test_a_code_that_completes_the_sign_in_clears_the_failures(app, client, settings):
    """Failures must be in a row: a finished sign-in starts counting again."""
    secret = pyotp.random_base32()
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=secret)
    _login(client, "rui")
    _post(client, "/auth/second-factor", {"action": "verify", "code": _wrong_codes(secret, 1)[0]})
    assert _user(app, "rui").failed_logins == 1
    _post(client, "/auth/second-factor", {"code": pyotp.TOTP(secret).at(clock.now())})
    assert _signed_in(client) and _user(app, "rui").failed_logins == 0


def test_a_replayed_captcha_cookie_is_refused(app, client):
    """Sending the cookie of an answered picture again is refused like a wrong answer."""
    _account(app, "alice")
    token = _token(client.get("/auth/login").get_data(as_text=True))
    client.get("/auth/captcha.png")
    saved = _cookie(client)
    data = {"csrf_token": token, "username": "alice", "password": "wrong-password-1"}
    statuses = []
    for _ in range(3):
        client.set_cookie("session", saved)
        response = client.post("/auth/login", data=data | {"captcha": TYPED})
        statuses.append(
            "与图片中的字符不符" in _field_errors(response.get_data(as_text=True), "captcha")
        )
    assert statuses == [False, True, True]
    assert _user(app, "alice").failed_logins == 1


def test_spent_captchas_are_forgotten_once_expired(app, client):
    """Spent picture nonces are kept only as long as a picture can be answered."""
    from engine.models import SpentToken
    from web.extensions import db

    _account(app, "alice")
    _login(client, "alice", password="wrong-password-1")
    clock.travel(timedelta(seconds=captcha_image.LIFETIME_SECONDS + 1))
    _login(client, "alice", password="wrong-password-1")
    with app.app_context():
        assert db.session.query(SpentToken).count() == 1


def _signed_in_with_totp(app, client, secret):
    _login(client, "rui")
    _post(client, "/auth/second-factor", {"code": pyotp.TOTP(secret).at(clock.now())})
    assert _signed_in(client)


def _new_secret(client) -> str:
    page = client.get("/auth/security").get_data(as_text=True)
    return re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)


def test_replacing_the_authenticator_needs_the_password_and_a_current_code(app, settings):
    """A stolen session cannot swap in an attacker's key; the owner can, and other sessions end."""
    old = pyotp.random_base32()
    _account(app, "rui", "credit_reviewer", second_factor="totp", totp_secret=old)
    client, other = app.test_client(), app.test_client()
    _signed_in_with_totp(app, other, old)
    clock.travel(timedelta(seconds=30))
    _signed_in_with_totp(app, client, old)
    new = _new_secret(client)
    clock.travel(timedelta(seconds=30))
    form = {"action": "totp", "totp_code": pyotp.TOTP(new).at(clock.now())}
    response = _post(client, "/auth/security", form)
    assert response.status_code == 422 and "用户名或密码错误" in _field_errors(
        response.get_data(as_text=True), "password"
    )
    response = _post(client, "/auth/security", form | {"password": PASSWORD, "current_code": "1"})
    assert "验证码错误" in _field_errors(response.get_data(as_text=True), "current_code")
    assert _user(app, "rui").totp_secret == old
    current = pyotp.TOTP(old).at(clock.now())
    response = _post(
        client, "/auth/security", form | {"password": PASSWORD, "current_code": current}
    )
    assert response.status_code == 302 and _user(app, "rui").totp_secret == new
    assert client.get("/auth/security").status_code == 200  # this session goes on
    assert other.get("/auth/security").location.startswith("/auth/login")  # that one ended
    assert _audit_kinds(app, "rui")[-2:] == ["password_confirmed", "totp_enrolled"]


def test_a_saved_cookie_is_worthless_after_signing_out(app, client):
    """The cookie copied before sign-out no longer opens a page that needs sign-in."""
    _account(app, "alice")
    _login(client, "alice")
    saved = _cookie(client)
    _post(client, "/auth/logout", {})
    client.set_cookie("session", saved)
    assert client.get("/auth/security").location.startswith("/auth/login")


def test_a_signed_in_session_ends_when_idle(app, client):
    """The session cookie carries an expiry (the idle timeout), renewed by each request."""
    _account(app, "alice")
    response = _login(client, "alice")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "Expires=" in cookie


@pytest.mark.parametrize("target", ["/x\r\nX-Injected: 1", "/\t/evil.example", "/\x00//evil"])
def test_a_next_with_control_characters_leads_home(app, client, target):
    """A line break in `next` cannot break the answer: the person is signed in and sent home."""
    _account(app, "alice")
    response = _login(client, "alice", next_=target)
    assert response.status_code == 302 and response.location == "/"
    assert "X-Injected" not in response.headers and _signed_in(client)
    assert _audit_kinds(app, "alice")[-1] == "login"


def test_a_nul_in_the_username_is_just_wrong_credentials(app, client):
    """A NUL byte (which PostgreSQL cannot store) gets the ordinary refusal, not an error."""
    _account(app, "alice")
    response = _login(client, "ali\x00ce")
    assert response.status_code == 422
    assert "用户名或密码错误" in _field_errors(response.get_data(as_text=True), "password")


def test_over_long_registration_fields_are_refused_beside_them(app, client):
    """A name or e-mail wider than its column is a field error naming the limit."""
    client.get("/auth/captcha.png")
    data = {"username": "longname", "display_name": "名" * 500, "phone": "1" * 40}
    data |= {"email": "a@" + "b" * 300, "password": PASSWORD, "password_again": PASSWORD}
    response = _post(client, "/auth/register", data | {"captcha": CAPTCHA})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "最多 120 个字符" in _field_errors(html, "display_name")
    assert "最多 200 个字符" in _field_errors(html, "email")
    assert "最多 32 个字符" in _field_errors(html, "phone")
    assert _user(app, "longname") is None


def test_the_lock_message_shows_the_time_in_the_readers_zone(app, client, settings):
    """The lock-out's end is shown in China time, the zone of every other time on the pages."""
    from zoneinfo import ZoneInfo

    _account(app, "alice")
    for _ in range(settings.login_max_failures):
        _login(client, "alice", password="wrong-password-1")
    html = _login(client, "alice").get_data(as_text=True)
    until = _user(app, "alice").locked_until.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"账户已锁定，直到 {until:%Y-%m-%d %H:%M}。" in html and "UTC" not in html

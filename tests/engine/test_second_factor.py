"""Second factors: TOTP codes (once each) and SMS codes (hashed, ten minutes, five tries)."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from engine import accounts, clock, second_factor
from engine.directory import add_user
from engine.errors import Invalid
from engine.models import AuditEvent, LoginCode


@pytest.fixture
def sms_settings(settings, http_stub):
    return dataclasses.replace(settings, sms_url=http_stub.url + "/sms")


PASSWORD = "correct-horse-42"


def _person(session, username="alice", **fields):
    user = add_user(session, username, [])
    accounts.set_password(user, PASSWORD)
    for name, value in fields.items():
        setattr(user, name, value)
    session.flush()
    return user


def _reason(excinfo) -> str:
    return excinfo.value.errors[0].message


def _sent_code(http_stub) -> str:
    return re.search(r"\d{6}", http_stub.requests[-1].json["text"]).group()


def test_totp_enrolment_needs_a_first_valid_code(session, settings):
    """A wrong first code leaves the person without TOTP; the right one switches it on."""
    user, secret = _person(session), second_factor.new_totp_secret()
    with pytest.raises(Invalid):
        second_factor.confirm_totp(session, settings, user, secret, "000000", password=PASSWORD)
    assert user.second_factor == "none"
    code = pyotp.TOTP(secret).now()
    second_factor.confirm_totp(session, settings, user, secret, code, password=PASSWORD)
    assert (user.second_factor, user.totp_secret) == ("totp", secret)


def test_totp_code_is_accepted_once(session, settings):
    """The same app code cannot be replayed; the next time step's code works."""
    secret = pyotp.random_base32()
    user = _person(session, second_factor="totp", totp_secret=secret)
    code = pyotp.TOTP(secret).at(clock.now())
    second_factor.check(session, settings, user, code, "login")
    with pytest.raises(Invalid) as excinfo:
        second_factor.check(session, settings, user, code, "sign")
    assert _reason(excinfo) == second_factor.USED
    clock.travel(timedelta(seconds=30))
    second_factor.check(session, settings, user, pyotp.TOTP(secret).at(clock.now()), "sign")


def test_provisioning_qr_is_inline_svg_with_the_issuer(session):
    """The enrolment QR code is an <svg> drawn on the server, naming the bank's service."""
    user = _person(session)
    uri = second_factor.provisioning_uri(user, pyotp.random_base32())
    assert "Smart%20Approval" in uri and "alice" in uri
    assert second_factor.qr_svg(uri).startswith("<svg")


def test_sms_code_is_sent_hashed_and_accepted_once(session, sms_settings, http_stub):
    """The gateway receives the code in the text; the database holds only its hash."""
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "sign")
    assert http_stub.requests[-1].json["to"] == "13800138000"
    code = _sent_code(http_stub)
    row = session.scalar(select(LoginCode).where(LoginCode.user_id == user.id))
    assert code not in row.code_hash
    second_factor.check(session, sms_settings, user, code, "sign")
    with pytest.raises(Invalid) as excinfo:
        second_factor.check(session, sms_settings, user, code, "sign")
    assert _reason(excinfo) == second_factor.NOT_SENT


def test_sms_code_for_one_purpose_does_not_sign_another(session, sms_settings, http_stub):
    """A sign-in code cannot be used to sign a contract."""
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "login")
    with pytest.raises(Invalid):
        second_factor.check(session, sms_settings, user, _sent_code(http_stub), "sign")


def test_sms_code_expires_after_ten_minutes(session, sms_settings, http_stub):
    """A code entered eleven minutes late is refused as expired."""
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "login")
    clock.travel(timedelta(minutes=11))
    with pytest.raises(Invalid) as excinfo:
        second_factor.check(session, sms_settings, user, _sent_code(http_stub), "login")
    assert _reason(excinfo) == second_factor.EXPIRED


def test_five_wrong_sms_codes_kill_the_code(session, sms_settings, http_stub):
    """After five wrong tries even the right code is refused, and failures are audited."""
    sms_settings = dataclasses.replace(sms_settings, login_max_failures=10)  # not locked yet
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "login")
    code = _sent_code(http_stub)
    wrong = "111111" if code != "111111" else "222222"
    for _ in range(5):
        with pytest.raises(Invalid):
            second_factor.check(session, sms_settings, user, wrong, "login")
    with pytest.raises(Invalid) as excinfo:
        second_factor.check(session, sms_settings, user, code, "login")
    assert _reason(excinfo) == second_factor.TOO_MANY
    kinds = session.scalars(select(AuditEvent.kind).where(AuditEvent.stream == "user:alice"))
    assert list(kinds).count("second_factor_failed") == 6


def test_no_sms_without_a_gateway(session, settings):
    """Without an SMS gateway no code is sent and the reason says so."""
    user = _person(session, phone="13800138000")
    assert second_factor.method(settings, user) is None
    with pytest.raises(Invalid) as excinfo:
        second_factor.send_code(session, settings, user, "sign")
    assert _reason(excinfo) == second_factor.NO_GATEWAY


def test_a_new_code_only_after_a_minute(session, sms_settings, http_stub):
    """Asking again at once is refused; a minute later the new code replaces the old one."""
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "sign")
    first = _sent_code(http_stub)
    with pytest.raises(Invalid):
        second_factor.send_code(session, sms_settings, user, "sign")
    clock.travel(timedelta(seconds=61))
    second_factor.send_code(session, sms_settings, user, "sign")
    second = _sent_code(http_stub)
    if first != second:
        with pytest.raises(Invalid):
            second_factor.check(session, sms_settings, user, first, "sign")
    second_factor.check(session, sms_settings, user, second, "sign")


def test_sms_enrolment_switches_the_second_factor(session, sms_settings, http_stub):
    """An applicant who types back the enrolment code signs in with SMS codes from then on."""
    user = _person(session, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "enrol")
    second_factor.enable_sms(session, sms_settings, user, _sent_code(http_stub), password=PASSWORD)
    assert user.second_factor == "sms"
    assert second_factor.method(sms_settings, user) == "sms"


def _wrong(secret) -> str:
    good = {pyotp.TOTP(secret).at(clock.now(), counter_offset=s) for s in (-1, 0, 1)}
    return next(c for c in ("111111", "222222", "333333", "444444") if c not in good)


def test_wrong_signing_codes_lock_the_account(session, settings):
    """Signing a contract gives no unlimited guesses: wrong app codes lock, and it is audited."""
    secret = pyotp.random_base32()
    user = _person(session, second_factor="totp", totp_secret=secret)
    for _ in range(settings.login_max_failures):
        with pytest.raises(Invalid):
            second_factor.check(session, settings, user, _wrong(secret), "sign")
    with pytest.raises(Invalid) as excinfo:
        second_factor.check(session, settings, user, pyotp.TOTP(secret).now(), "sign")
    assert _reason(excinfo).startswith("this account is locked until")
    kinds = list(session.scalars(select(AuditEvent.kind).where(AuditEvent.stream == "user:alice")))
    assert "locked" in kinds and kinds[-1] == "second_factor_refused_locked"


def test_replacing_totp_needs_the_password_and_the_current_code(session, settings):
    """Without both proofs the old key stays; with them the new key is on and sessions end."""
    old, new = pyotp.random_base32(), pyotp.random_base32()
    user = _person(session, second_factor="totp", totp_secret=old)
    code = pyotp.TOTP(new).now()
    with pytest.raises(Invalid) as excinfo:
        second_factor.confirm_totp(session, settings, user, new, code, password="wrong-pass-1")
    assert excinfo.value.errors[0].field == "password"
    with pytest.raises(Invalid) as excinfo:
        second_factor.confirm_totp(session, settings, user, new, code, password=PASSWORD)
    assert excinfo.value.errors[0].field == "current_code" and user.totp_secret == old
    current = pyotp.TOTP(old).now()
    second_factor.confirm_totp(
        session, settings, user, new, code, password=PASSWORD, current_code=current
    )
    assert user.totp_secret == new and user.session_version == 1 and user.failed_logins == 2


def test_switching_from_totp_to_sms_needs_the_app_code(session, sms_settings, http_stub):
    """A person on TOTP moving to SMS codes also gives the app's code."""
    secret = pyotp.random_base32()
    user = _person(session, second_factor="totp", totp_secret=secret, phone="13800138000")
    second_factor.send_code(session, sms_settings, user, "enrol")
    sms = _sent_code(http_stub)
    with pytest.raises(Invalid) as excinfo:
        second_factor.enable_sms(session, sms_settings, user, sms, password=PASSWORD)
    assert excinfo.value.errors[0].field == "current_code" and user.second_factor == "totp"
    current = pyotp.TOTP(secret).now()
    second_factor.enable_sms(
        session, sms_settings, user, sms, password=PASSWORD, current_code=current
    )
    assert user.second_factor == "sms" and user.totp_secret is None

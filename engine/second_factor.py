"""Second factors: TOTP (an authenticator app) and one-time codes sent by SMS.

Decision: one entry point for every caller, `check(session, settings, user, code, purpose)`: a
TOTP user is asked for the app's code, anybody else for the latest SMS code of that purpose. SMS
codes are kept only as an HMAC keyed by the secret key, expire after ten minutes, are used once
and die after five wrong tries; a TOTP code is never accepted twice (each accepted time step is
remembered), so a code seen over someone's shoulder cannot be replayed. Failed checks count
attempts in the caller's transaction: a caller must commit even when `check` raises `Invalid`.
Every wrong code, whatever it is for (signing in, signing a contract, changing the factor),
also counts toward the account's lock-out (`engine.accounts`), and a locked account's codes are
refused, so no purpose offers unlimited guesses. Changing the factor needs the password and,
when one is already set, a code from it, and ends the person's other sessions.
The SMS goes through the notification machinery's own gateway client, never a second one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import pyotp
import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import accounts, audit, clock
from engine.config import Settings
from engine.errors import FieldError, Invalid
from engine.models import LoginCode, User
from engine.notification_channels import DeliveryFailed, Draft, send_sms

ISSUER = "智慧审批 Smart Approval"
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
#: A new SMS code only this long after the last one, so nobody can flood a phone.
RESEND_AFTER = timedelta(seconds=60)
PURPOSES = ("login", "sign", "enrol")
#: The `LoginCode` purpose whose row remembers the last accepted TOTP time step.
_TOTP_STEP = "totp-step"

NO_GATEWAY = "SMS codes cannot be sent: no SMS gateway is configured"
NO_PHONE = "SMS codes cannot be sent: no mobile phone number is on record"
WRONG = "wrong code"
USED = "this code has already been used; wait for the next one"
NOT_SENT = "no code has been sent; ask for a new one"
EXPIRED = "the code has expired; ask for a new one"
TOO_MANY = "too many wrong codes; ask for a new one"
TOO_SOON = "a code was sent less than a minute ago; please wait"
USE_APP = "use the code from your authenticator app"
SEND_FAILED = "the SMS could not be sent; try again later"
#: Refusals that are no guess at a code, so they do not count toward the lock-out.
_NO_GUESS = (NOT_SENT, EXPIRED)


def _refuse(reason: str) -> Invalid:
    return Invalid([FieldError("code", reason)])


def sms_available(settings: Settings, user: User) -> bool:
    return bool(settings.sms_url and user.phone)


def method(settings: Settings, user: User) -> str | None:
    """How `user` proves a second factor now: totp, sms, or None (nothing available)."""
    if user.second_factor == "totp" and user.totp_secret:
        return "totp"
    return "sms" if sms_available(settings, user) else None


def check(session: Session, settings: Settings, user: User, code: str, purpose: str) -> None:
    """Accept `code` as `user`'s second factor for `purpose`, or raise `Invalid` on "code"."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if accounts.locked(user):
        _audit(session, settings, user, "second_factor_refused_locked", purpose=purpose)
        raise _refuse(str(accounts.AccountLocked(user.locked_until)))
    code = (code or "").strip().replace(" ", "")
    try:
        if method(settings, user) == "totp":
            _check_totp(session, user, user.totp_secret, code)
        else:
            check_sms_code(session, settings, user, code, purpose)
    except Invalid as err:
        _audit(session, settings, user, "second_factor_failed", purpose=purpose, reason=_why(err))
        if _why(err) not in _NO_GUESS:
            accounts.second_factor_failed(session, settings, user)
        raise


def _why(err: Invalid) -> str:
    return err.errors[0].message if err.errors else ""


def _audit(session: Session, settings: Settings, user: User, kind: str, **data) -> None:
    stream = audit.user_stream(user.username)
    audit.append(session, key=settings.secret_key, stream=stream, kind=kind,
                 actor=user.username, data=data)  # fmt: skip


# --- TOTP -------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an inline <svg> element, drawn on the server (no script)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff")


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now (demo helpers and tests)."""
    return pyotp.TOTP(secret).at(clock.now())


def _clean(code: str | None) -> str:
    return (code or "").strip().replace(" ", "")


def _prove_identity(
    session: Session, settings: Settings, user: User, password: str, current_code: str
) -> None:
    """The password and, when a factor is set, a code from it (`AccountLocked`, or `Invalid` on
    "password" or "current_code"); both count toward the lock-out when wrong."""
    accounts.confirm_password(session, settings, user, password or "")
    if user.second_factor == "none":
        return
    try:
        check(session, settings, user, current_code, "enrol")
    except Invalid as err:
        raise Invalid([FieldError("current_code", _why(err))]) from None


def _changed(session: Session, settings: Settings, user: User, kind: str, previous: str) -> None:
    user.session_version = (user.session_version or 0) + 1  # other sessions end here
    _audit(session, settings, user, kind, replaced=previous)


def confirm_totp(session: Session, settings: Settings, user: User, secret: str, code: str, *,
                 password: str, current_code: str = "") -> None:  # fmt: skip
    """Switch `user` to TOTP once a first code from the app proves it was set up right."""
    _prove_identity(session, settings, user, password, current_code)
    _check_totp(session, user, secret, _clean(code), new_secret=True)
    previous = user.second_factor
    user.totp_secret, user.second_factor = secret, "totp"
    _changed(session, settings, user, "totp_enrolled", previous)


def _check_totp(
    session: Session, user: User, secret: str, code: str, *, new_secret: bool = False
) -> None:
    totp, now = pyotp.TOTP(secret), clock.now()
    step = next((s for s in (0, -1, 1) if code and totp.at(now, counter_offset=s) == code), None)
    if step is None:
        raise _refuse(WRONG)
    counter = totp.timecode(now) + step
    seen = _last_step(session, user)
    # The steps remembered belong to the old secret: a new one's first code is no replay.
    if seen is not None and counter <= int(seen.code_hash) and not new_secret:
        raise _refuse(USED)
    if seen is None:
        seen = LoginCode(user_id=user.id, purpose=_TOTP_STEP, code_hash="0", expires_at=now)
        session.add(seen)
    seen.code_hash = str(max(counter, int(seen.code_hash)))
    seen.used_at, seen.expires_at = now, now
    session.flush()


def _last_step(session: Session, user: User) -> LoginCode | None:
    query = select(LoginCode).where(LoginCode.user_id == user.id, LoginCode.purpose == _TOTP_STEP)
    return session.scalars(query.order_by(LoginCode.id.desc()).limit(1)).first()


# --- SMS codes --------------------------------------------------------------------------------


def _hash(settings: Settings, user: User, purpose: str, code: str) -> str:
    message = f"{user.id}:{purpose}:{code}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def _latest(session: Session, user: User, purpose: str) -> LoginCode | None:
    query = select(LoginCode).where(LoginCode.user_id == user.id, LoginCode.purpose == purpose)
    return session.scalars(query.order_by(LoginCode.id.desc()).limit(1)).first()


def send_code(session: Session, settings: Settings, user: User, purpose: str) -> None:
    """Text a new six-digit code for `purpose` to `user`'s phone; earlier codes stop working."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if purpose != "enrol" and method(settings, user) == "totp":
        raise _refuse(USE_APP)
    if not settings.sms_url:
        raise _refuse(NO_GATEWAY)
    if not user.phone:
        raise _refuse(NO_PHONE)
    now, last = clock.now(), _latest(session, user, purpose)
    if last is not None and now - last.created_at < RESEND_AFTER:
        raise _refuse(TOO_SOON)
    if last is not None and last.used_at is None:
        last.used_at = now  # superseded: only the newest code counts
    code = f"{secrets.randbelow(10**6):06d}"
    digest = _hash(settings, user, purpose, code)
    row = LoginCode(user_id=user.id, purpose=purpose, code_hash=digest,
                    created_at=now, expires_at=now + CODE_LIFETIME)  # fmt: skip
    session.add(row)
    session.flush()
    _deliver(settings, user, row, code)
    _audit(session, settings, user, "code_sent", purpose=purpose)


def _sms_text(user: User, code: str) -> str:
    if user.locale == "en":
        return f"Smart Approval: your code is {code}, valid for 10 minutes. Never share it."
    return f"【智慧审批】您的验证码是 {code}，10 分钟内有效，请勿告诉他人。"


def _deliver(settings: Settings, user: User, row: LoginCode, code: str) -> None:
    # Sent at once (the person is waiting) and not stored as a Notification: its body holds
    # the code, which is kept nowhere in clear.
    draft = Draft(key=f"login-code:{row.id}", instance_id=0, event=f"code:{row.purpose}",
                  channel="sms", username=user.username, address=user.phone,
                  locale=user.locale, subject="", body=_sms_text(user, code))  # fmt: skip
    try:
        send_sms(settings, draft)
    except DeliveryFailed:
        raise _refuse(SEND_FAILED) from None


def check_sms_code(session: Session, settings: Settings, user: User, code: str, purpose: str):
    """Accept the latest unused SMS code of `purpose` once; count a wrong try."""
    row, now = _latest(session, user, purpose), clock.now()
    if row is None or row.used_at is not None:
        raise _refuse(NOT_SENT)
    if now >= row.expires_at:
        raise _refuse(EXPIRED)
    if row.attempts >= MAX_ATTEMPTS:
        raise _refuse(TOO_MANY)
    if not hmac.compare_digest(row.code_hash, _hash(settings, user, purpose, code)):
        row.attempts += 1
        session.flush()
        raise _refuse(TOO_MANY if row.attempts >= MAX_ATTEMPTS else WRONG)
    row.used_at = now
    session.flush()


def enable_sms(session: Session, settings: Settings, user: User, code: str, *,
               password: str, current_code: str = "") -> None:  # fmt: skip
    """Switch `user` to SMS codes once a code sent with purpose "enrol" comes back. A person on
    SMS already proves their phone with that very code; one on TOTP also gives the app's code."""
    if user.second_factor == "sms":
        accounts.confirm_password(session, settings, user, password or "")
    else:
        _prove_identity(session, settings, user, password, current_code)
    try:
        check_sms_code(session, settings, user, _clean(code), "enrol")
    except Invalid as err:
        if _why(err) not in _NO_GUESS:
            accounts.second_factor_failed(session, settings, user)
        raise
    previous = user.second_factor
    user.second_factor, user.totp_secret = "sms", None
    _changed(session, settings, user, "sms_enrolled", previous)

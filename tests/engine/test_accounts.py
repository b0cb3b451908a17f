"""Accounts: registration checks, password sign-in, lock-out after repeated failures, demo users."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import accounts, clock
from engine.errors import Forbidden, Invalid
from engine.models import AuditEvent, User

PASSWORD = "correct-horse-42"


def _register(session, settings, username="alice", password=PASSWORD, **fields):
    values = {"display_name": "Alice", "phone": "", "email": ""} | fields
    return accounts.register_applicant(session, settings, username, password, **values)


def _kinds(session, username="alice") -> list[str]:
    query = select(AuditEvent.kind).where(AuditEvent.stream == f"user:{username}")
    return list(session.scalars(query.order_by(AuditEvent.seq)))


def _fields(excinfo) -> dict[str, str]:
    return {e.field: e.message for e in excinfo.value.errors}


def test_registration_keeps_only_an_argon2_hash(session, settings):
    """A registered applicant belongs to no group and has an Argon2id hash, audited."""
    user = _register(session, settings, phone="+86 138-0013-8000")
    assert user.group_keys == set() and user.phone == "13800138000"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert _kinds(session) == ["registered"]


def test_registration_lists_every_mistake_by_field(session, settings):
    """A taken name, a short password and a bad phone number are each reported on their field."""
    _register(session, settings)
    with pytest.raises(Invalid) as excinfo:
        _register(session, settings, "Alice", "short1", display_name="", phone="12345")
    fields = _fields(excinfo)
    assert fields["username"] == accounts.USERNAME_TAKEN
    assert fields["password"] == accounts.PASSWORD_SHORT
    assert set(fields) == {"username", "password", "display_name", "phone"}


def test_password_without_digits_is_weak(session, settings):
    """Ten letters are not enough: a password needs letters and digits."""
    with pytest.raises(Invalid) as excinfo:
        _register(session, settings, password="onlyletters")
    assert _fields(excinfo) == {"password": accounts.PASSWORD_WEAK}


def test_unknown_user_and_wrong_password_get_the_same_answer(session, settings):
    """Nobody learns from the message whether a username exists."""
    _register(session, settings)
    answers = []
    for username, password in (("alice", "wrong-password-1"), ("nobody", PASSWORD)):
        with pytest.raises(Invalid) as excinfo:
            accounts.authenticate(session, settings, username, password)
        answers.append(str(excinfo.value))
    assert answers[0] == answers[1]


def test_lock_out_after_repeated_failures_then_unlock(session, settings):
    """Five failures lock even the right password out for fifteen minutes; then it works again."""
    _register(session, settings)
    for _ in range(settings.login_max_failures):
        with pytest.raises(Invalid):
            accounts.authenticate(session, settings, "alice", "wrong-password-1")
    with pytest.raises(accounts.AccountLocked) as excinfo:
        accounts.authenticate(session, settings, "alice", PASSWORD)
    assert excinfo.value.until > clock.now() + timedelta(minutes=14)
    assert _kinds(session).count("login_failed") == settings.login_max_failures
    assert "locked" in _kinds(session) and "login_refused_locked" in _kinds(session)
    clock.travel(timedelta(minutes=settings.lockout_minutes, seconds=1))
    assert accounts.authenticate(session, settings, "alice", PASSWORD).username == "alice"


def test_success_resets_the_failure_count(session, settings):
    """Failures must be in a row: a success in between starts counting again."""
    user = _register(session, settings)
    for _ in range(settings.login_max_failures - 1):
        with pytest.raises(Invalid):
            accounts.authenticate(session, settings, "alice", "wrong-password-1")
    accounts.authenticate(session, settings, "alice", PASSWORD)
    assert user.failed_logins == 0


def test_outdated_hash_is_replaced_on_sign_in(session, settings, monkeypatch):
    """When the Argon2 parameters change, the next sign-in stores a new hash."""
    user = _register(session, settings)
    old = user.password_hash
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=4))
    accounts.authenticate(session, settings, "alice", PASSWORD)
    assert user.password_hash != old and "t=4" in user.password_hash


def test_demo_users_are_idempotent_with_fixed_secrets(session, settings):
    """Running twice leaves one account per demo name; staff have the documented TOTP secret."""
    accounts.ensure_demo_users(session, settings)
    accounts.ensure_demo_users(session, settings)
    users = {u.username: u for u in session.scalars(select(User))}
    assert len(users) == len(accounts.DEMO_USERS)
    assert users["credit"].group_keys == {"credit_reviewer"}
    assert users["credit"].totp_secret == accounts.demo_secret("credit")
    assert users["alice"].group_keys == set() and users["alice"].second_factor == "none"
    accounts.authenticate(session, settings, "admin", accounts.DEMO_PASSWORD)


def test_demo_users_are_never_created_in_production(session, settings):
    """In production the demo accounts are refused."""
    production = dataclasses.replace(settings, env="production")
    with pytest.raises(Forbidden):
        accounts.ensure_demo_users(session, production)
    assert session.scalar(select(User).where(User.username == "alice")) is None


def test_the_password_alone_does_not_clear_failures_of_a_person_with_a_second_factor(
    session, settings
):
    """With a second factor, only a finished sign-in (`signed_in`) starts counting again."""
    user = _register(session, settings)
    user.second_factor = "totp"
    for _ in range(settings.login_max_failures - 1):
        with pytest.raises(Invalid):
            accounts.authenticate(session, settings, "alice", "wrong-password-1")
    accounts.authenticate(session, settings, "alice", PASSWORD)
    assert user.failed_logins == settings.login_max_failures - 1
    accounts.signed_in(session, settings, user)
    assert user.failed_logins == 0 and _kinds(session)[-1] == "login"


def test_a_username_with_a_nul_is_wrong_credentials(session, settings):
    """Control characters in a username get the one sign-in refusal, before any query."""
    _register(session, settings)
    with pytest.raises(Invalid) as excinfo:
        accounts.authenticate(session, settings, "ali\x00ce", PASSWORD)
    assert _fields(excinfo) == {"password": accounts.BAD_LOGIN}


def test_registration_refuses_fields_wider_than_their_columns(session, settings):
    """Display name, e-mail and phone are limited to their columns' widths."""
    with pytest.raises(Invalid) as excinfo:
        _register(session, settings, display_name="x" * 121, email="a@" + "b" * 199, phone="1" * 33)
    assert _fields(excinfo) == {
        "display_name": "must be at most 120 characters",
        "email": "must be at most 200 characters",
        "phone": "must be at most 32 characters",
    }
    with pytest.raises(Invalid) as excinfo:
        _register(session, settings, display_name="Al\x00ice", email="a\x00@example.com")
    assert set(_fields(excinfo)) == {"display_name", "email"}


def test_signing_out_ends_every_session(session, settings):
    """Signing out raises the session version, which every older session carries."""
    user = _register(session, settings)
    accounts.signed_out(session, settings, user)
    assert user.session_version == 1 and _kinds(session)[-1] == "logout"


def test_a_one_time_token_is_spent_once(session, settings):
    """The second use of a token is refused; expired ones are forgotten."""
    lifetime = timedelta(minutes=10)
    assert accounts.spend_token(session, "captcha:abc", lifetime)
    assert not accounts.spend_token(session, "captcha:abc", lifetime)
    clock.travel(lifetime + timedelta(seconds=1))
    assert accounts.spend_token(session, "captcha:def", lifetime)
    assert accounts.spend_token(session, "captcha:abc", lifetime)

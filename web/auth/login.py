"""Signing in (captcha, password, second factor) and out."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, gettext
from flask_login import current_user, login_required, logout_user

from engine import accounts
from engine import second_factor as factors
from engine.errors import Invalid
from web.auth import bp, captcha_image, gate
from web.engine_words import words
from web.extensions import db


def field_errors(err: Invalid) -> dict[str, list[str]]:
    """The engine's reasons by field, in the reader's language."""
    errors: dict[str, list[str]] = {}
    for e in err.errors:
        errors.setdefault(e.field, []).append(words(e.message))
    return errors


def _login_page(errors: dict | None = None):
    values = {"username": request.form.get("username", ""), "next": _next()}
    page = render_template("auth/login.html", values=values, errors=errors or {})
    return page, 422 if errors else 200


def _next() -> str:
    return request.values.get("next", "")


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login():
    if request.method == "GET":
        return _login_page()
    if not captcha_image.passed(request.form.get("captcha", "")):
        return _login_page({"captcha": [gettext("The characters do not match the picture.")]})
    username, password = request.form.get("username", ""), request.form.get("password", "")
    try:
        user = accounts.authenticate(db.session, gate.settings(), username, password)
    except accounts.AccountLocked as err:
        db.session.commit()  # the refusal is audited
        return _login_page({"password": [locked_message(err.until)]})
    except Invalid as err:
        db.session.commit()  # the failure counts toward the lock-out
        return _login_page(field_errors(err))
    target = gate.after_password(user, _next())
    db.session.commit()  # the sign-in is recorded before anything can go wrong on the way out
    return redirect(target)


def locked_message(until) -> str:
    """Until when the account is locked, in the reader's time zone (the app's, China time)."""
    when = format_datetime(until, "yyyy-MM-dd HH:mm")
    return gettext("This account is locked until %(time)s.", time=when)


def _locked_out(user):
    """A locked account cannot finish signing in, whatever code it brings."""
    gate.fresh_session()
    flash(locked_message(user.locked_until), "error")
    return redirect(url_for("auth.login"))


def _factor_page(user, errors: dict | None = None):
    settings = gate.settings()
    page = render_template(
        "auth/second_factor.html",
        method=factors.method(settings, user),
        gateway=bool(settings.sms_url),
        phone_end=(user.phone or "")[-4:],
        errors=errors or {},
    )
    return page, 422 if errors else 200


@bp.route("/second-factor", methods=["GET", "POST"], endpoint="second_factor")
def second_factor():
    user = gate.pending_user()
    if user is None:
        flash(gettext("Please sign in again."), "error")
        return redirect(url_for("auth.login"))
    if accounts.locked(user):
        return _locked_out(user)
    if request.method == "GET":
        return _factor_page(user)
    if request.form.get("action") == "send":
        return _send_login_code(user)
    return _check_code(user)


def _send_login_code(user):
    try:
        factors.send_code(db.session, gate.settings(), user, "login")
    except Invalid as err:
        db.session.commit()
        return _factor_page(user, field_errors(err))
    db.session.commit()
    flash(gettext("A code was sent to your phone ending in %(end)s.", end=user.phone[-4:]))
    return redirect(url_for("auth.second_factor"))


def _check_code(user):
    settings = gate.settings()
    try:
        factors.check(db.session, settings, user, request.form.get("code", ""), "login")
    except Invalid as err:
        db.session.commit()  # the wrong code counts toward the lock-out (engine.second_factor)
        if accounts.locked(user):
            return _locked_out(user)
        return _factor_page(user, field_errors(err))
    target = gate.pending_next()
    gate.sign_in(user)
    db.session.commit()
    return redirect(target)


@bp.route("/logout", methods=["GET", "POST"], endpoint="logout")
@login_required
def logout():
    if request.method == "GET":  # a link only asks: signing out changes state, so it is a POST
        return render_template("auth/logout.html")
    accounts.signed_out(db.session, gate.settings(), current_user.user)
    db.session.commit()
    logout_user()
    gate.fresh_session()
    flash(gettext("You are signed out."))
    return redirect(url_for("home.index"))

"""The security page: enrol an authenticator app (TOTP) or, for applicants, SMS codes.

Decision: a change of second factor is the engine's (`engine.second_factor`), which wants the
password and a code of the factor already set; this page only shows each refusal beside its own
field, keeps this session valid across the change, and sends a person whose guesses locked the
account back to the sign-in page.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, logout_user
from markupsafe import Markup

from engine import accounts
from engine import second_factor as factors
from engine.errors import Invalid
from web.access import is_staff
from web.auth import bp, gate
from web.auth.login import field_errors, locked_message
from web.extensions import db

#: The TOTP secret being set up, kept until the first code confirms it.
SETUP = "auth_totp_setup"
#: The engine's field names → the inputs of each form on the page.
TOTP_FIELDS = {"code": "totp_code"}
SMS_FIELDS = {"code": "sms_code", "password": "sms_password", "current_code": "sms_current_code"}


def _page(errors: dict | None = None):
    user, settings = current_user.user, gate.settings()
    secret = session.setdefault(SETUP, factors.new_totp_secret())
    uri = factors.provisioning_uri(user, secret)
    page = render_template(
        "auth/security.html",
        user=user,
        staff=is_staff(user),
        enrol_first=bool(session.get(gate.ENROL_FIRST)),
        secret=secret,
        qr=Markup(factors.qr_svg(uri)),  # segno's own markup: no user text inside
        gateway=bool(settings.sms_url),
        sms_ready=factors.sms_available(settings, user),
        next=request.values.get("next", ""),
        errors=errors or {},
    )
    return page, 422 if errors else 200


@bp.route("/security", methods=["GET", "POST"], endpoint="security")
@login_required
def security():
    if request.method == "GET":
        return _page()
    action = request.form.get("action")
    if action == "totp":
        return _confirm_totp()
    if action in ("sms_send", "sms_confirm") and not is_staff(current_user):
        return _sms(action)
    return _page()


def _refused(err: Exception, fields: dict[str, str]):
    """Keep the counted try; a person who is now locked out is signed out."""
    db.session.commit()
    user = current_user.user
    if isinstance(err, accounts.AccountLocked) or accounts.locked(user):
        logout_user()
        gate.fresh_session()
        flash(locked_message(user.locked_until), "error")
        return redirect(url_for("auth.login"))
    errors = {fields.get(name, name): texts for name, texts in field_errors(err).items()}
    return _page(errors)


def _confirm_totp():
    user, secret, form = current_user.user, session.get(SETUP, ""), request.form
    try:
        factors.confirm_totp(
            db.session, gate.settings(), user, secret, form.get("totp_code"),
            password=form.get("password", ""), current_code=form.get("current_code", ""),
        )  # fmt: skip
    except (Invalid, accounts.AccountLocked) as err:
        return _refused(err, TOTP_FIELDS)
    db.session.commit()
    gate.remember_version(user)  # this session stays; every other one of this person ends
    session.pop(SETUP, None)
    session.pop(gate.ENROL_FIRST, None)
    flash(gettext("Two-step sign-in with your authenticator app is on."))
    return redirect(gate.safe_next(form.get("next")))


def _sms(action: str):
    user, settings, form = current_user.user, gate.settings(), request.form
    try:
        if action == "sms_send":
            factors.send_code(db.session, settings, user, "enrol")
        else:
            factors.enable_sms(
                db.session, settings, user, form.get("sms_code", ""),
                password=form.get("sms_password", ""),
                current_code=form.get("sms_current_code", ""),
            )  # fmt: skip
    except (Invalid, accounts.AccountLocked) as err:
        return _refused(err, SMS_FIELDS)
    db.session.commit()
    if action == "sms_send":
        flash(gettext("A code was sent to your phone ending in %(end)s.", end=user.phone[-4:]))
    else:
        gate.remember_version(user)
        flash(gettext("Two-step sign-in with SMS codes is on."))
    return redirect(url_for("auth.security"))

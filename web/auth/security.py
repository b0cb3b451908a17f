"""The security page: enrol an authenticator app (TOTP) or, for applicants, SMS codes."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from markupsafe import Markup

from engine import second_factor as factors
from engine.errors import Invalid
from web.access import is_staff
from web.auth import bp, gate
from web.auth.login import field_errors
from web.extensions import db

#: The TOTP secret being set up, kept until the first code confirms it.
SETUP = "auth_totp_setup"


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


def _confirm_totp():
    user, secret = current_user.user, session.get(SETUP, "")
    try:
        factors.confirm_totp(
            db.session, gate.settings(), user, secret, request.form.get("totp_code")
        )
    except Invalid as err:
        db.session.rollback()
        return _page({"totp_code": field_errors(err)["code"]})
    db.session.commit()
    session.pop(SETUP, None)
    session.pop(gate.ENROL_FIRST, None)
    flash(gettext("Two-step sign-in with your authenticator app is on."))
    return redirect(gate.safe_next(request.form.get("next")))


def _sms(action: str):
    user, settings = current_user.user, gate.settings()
    try:
        if action == "sms_send":
            factors.send_code(db.session, settings, user, "enrol")
        else:
            factors.enable_sms(db.session, settings, user, request.form.get("sms_code", ""))
    except Invalid as err:
        db.session.commit()  # a wrong try counts
        return _page({"sms_code": field_errors(err)["code"]})
    db.session.commit()
    if action == "sms_send":
        flash(gettext("A code was sent to your phone ending in %(end)s.", end=user.phone[-4:]))
    else:
        flash(gettext("Two-step sign-in with SMS codes is on."))
    return redirect(url_for("auth.security"))

"""Self-registration of applicants (staff accounts are made by an administrator)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.routing import BuildError

from engine import accounts
from engine.errors import Invalid
from web.auth import bp, captcha_image, gate
from web.auth.login import field_errors
from web.extensions import db

FIELDS = ("username", "display_name", "phone", "email")


def _page(errors: dict | None = None):
    values = {name: request.form.get(name, "") for name in FIELDS}
    page = render_template("auth/register.html", values=values, errors=errors or {})
    return page, 422 if errors else 200


def _landing() -> str:
    try:
        return url_for("apply.index")
    except BuildError:  # the applicant area is not built into this app
        return url_for("home.index")


@bp.route("/register", methods=["GET", "POST"], endpoint="register")
def register():
    if request.method == "GET":
        return _page()
    form = request.form
    if not captcha_image.passed(form.get("captcha", "")):
        return _page({"captcha": [gettext("The characters do not match the picture.")]})
    if form.get("password", "") != form.get("password_again", ""):
        return _page({"password_again": [gettext("The two passwords differ.")]})
    try:
        user = accounts.register_applicant(
            db.session, gate.settings(), form.get("username", ""), form.get("password", ""),
            form.get("display_name", ""), form.get("phone", ""), form.get("email", ""),
        )  # fmt: skip
    except Invalid as err:
        db.session.rollback()
        return _page(field_errors(err))
    gate.sign_in(user)
    db.session.commit()
    flash(gettext("Welcome, %(name)s: your account is ready.", name=user.display_name))
    return redirect(_landing())

"""The sign-in area: password + captcha, a second factor, registration, and the security page.

Decision: the engine decides (`engine.accounts`, `engine.second_factor`); these views only move
a person through the steps, keeping the half-done sign-in in the session (`gate`).
"""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

from web.auth import captcha_image, gate, login, register, security  # noqa: E402, F401

bp.before_app_request(gate.hold_for_enrolment)

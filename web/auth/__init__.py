"""The auth area (being built)."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

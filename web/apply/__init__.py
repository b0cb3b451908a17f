"""The apply area (being built)."""

from flask import Blueprint

bp = Blueprint("apply", __name__, url_prefix="/applications")

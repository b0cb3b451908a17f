"""The track area (being built): progress, results, messages."""

from flask import Blueprint

bp = Blueprint("track", __name__, url_prefix="/track")

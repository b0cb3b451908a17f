"""The start page: which approval types are deployed (their live versions), and health."""

from flask import Blueprint, jsonify, render_template

from engine import bundles
from web.extensions import db

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    versions = bundles.live_versions(db.session)
    return render_template("home.html", versions=versions)


@bp.get("/healthz")
def health():
    db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")

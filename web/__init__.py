"""The Flask application factory: a thin host over the `engine` library.

Decision: configuration comes from `engine.config.Settings` (environment variables), never from
Flask config files; the app keeps the settings object at `app.extensions["approval"]`.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from engine.config import Settings
from engine.db import sqlite_pragmas
from web.extensions import db


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    settings = settings or Settings.from_env(**overrides)
    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_SESSION_OPTIONS={"expire_on_commit": False},
        JSON_AS_ASCII=False,
    )
    app.extensions["approval"] = settings
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", sqlite_pragmas)

    from web import errors, home

    errors.register(app)
    app.register_blueprint(home.bp)
    return app


def settings_of(app: Flask) -> Settings:
    return app.extensions["approval"]

"""The Flask application factory: a thin host over the `engine` library.

Decision: configuration comes from `engine.config.Settings` (environment variables), never from
Flask config files; the app keeps the settings object at `app.extensions["approval"]`.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_babel import lazy_gettext
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.config import Settings
from engine.db import sqlite_pragmas
from web import i18n
from web.extensions import babel, csrf, db, login_manager

#: Upload rows a documents field offers per post (web/apply); the request size allows them all.
UPLOAD_SLOTS = 4


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    settings = settings or Settings.from_env(**overrides)
    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_SESSION_OPTIONS={"expire_on_commit": False},
        JSON_AS_ASCII=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        # A form posts up to UPLOAD_SLOTS documents at once, each up to the per-file limit.
        MAX_CONTENT_LENGTH=UPLOAD_SLOTS * settings.max_upload_bytes + 1024 * 1024,
        # A reviewer may take an hour over an opinion: the CSRF token lives as long as the
        # session (which ends after PERMANENT_SESSION_LIFETIME of inactivity, or at sign-out).
        WTF_CSRF_TIME_LIMIT=None,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        BABEL_DEFAULT_LOCALE="zh",
        # The bank's day: times on pages match the dates in application numbers (China time).
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        BABEL_TRANSLATION_DIRECTORIES=i18n.translation_directories(),
    )
    app.extensions["approval"] = settings
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", sqlite_pragmas)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to see this page.")
    login_manager.login_message_category = "error"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)

    from web import (  # noqa: F401  (access: the user loader)
        access,
        api,
        apply,
        auth,
        errors,
        home,
        inbox,
        navigation,
        security_headers,
        track,
    )

    errors.register(app)
    navigation.register(app)
    security_headers.register(app)
    for blueprint in (home.bp, i18n.bp, auth.bp, apply.bp, track.bp, inbox.bp, api.bp):
        app.register_blueprint(blueprint)
    return app


def settings_of(app: Flask) -> Settings:
    return app.extensions["approval"]

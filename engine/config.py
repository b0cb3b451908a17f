"""Every setting of the system, read once from `APPROVAL_*` environment variables.

Decision: nothing else reads the environment. Defaults are the embedded configuration (SQLite and
a SQLite-backed broker under `./instance/`), so a fresh checkout runs with no service at all; in
production mode (`APPROVAL_ENV=production`) unsafe defaults are refused with the variable to set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path


def _text(value) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


class ConfigError(Exception):
    """A setting is missing or unsafe; the message names the variable."""


def _instance_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("APPROVAL_INSTANCE_DIR", "instance")).resolve()


def _secret_key(env: Mapping[str, str], instance: Path) -> str:
    # A generated key kept in the instance folder survives restarts without anyone choosing one.
    if env.get("APPROVAL_SECRET_KEY"):
        return env["APPROVAL_SECRET_KEY"]
    if env.get("APPROVAL_ENV") == "production":
        return ""  # several processes must share one key: `check` refuses a missing one
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Typed settings; build with `Settings.from_env()` (or `Settings.from_env(env)` in tests)."""

    #: APPROVAL_ENV — "development" (default) or "production" (refuses unsafe defaults).
    env: str = "development"
    #: APPROVAL_INSTANCE_DIR — folder for the embedded database, broker, uploads, secret key.
    instance_dir: Path = field(default_factory=lambda: Path("instance").resolve())
    #: APPROVAL_DATABASE_URL — SQLAlchemy URL; default SQLite in the instance folder.
    database_url: str = ""
    #: APPROVAL_BROKER_URL — Celery broker; default Kombu's SQLAlchemy transport on SQLite.
    broker_url: str = ""
    #: APPROVAL_SECRET_KEY — signs sessions and keys the audit chain; default generated once.
    secret_key: str = ""
    #: APPROVAL_PROCESSES_DIR / APPROVAL_FORMS_DIR — where bundles and their forms are read from.
    processes_dir: Path = field(default_factory=lambda: Path("processes").resolve())
    forms_dir: Path = field(default_factory=lambda: Path("forms").resolve())
    #: APPROVAL_MAX_FILE_BYTES — largest diagram, DMN or form file accepted (default 2 MiB).
    max_file_bytes: int = 2 * 1024 * 1024
    #: APPROVAL_SCRIPT_STEP_LIMIT — steps one script may take before it is stopped.
    script_step_limit: int = 100_000
    #: APPROVAL_MAX_CALL_DEPTH — nesting of call activities before an instance is stopped.
    max_call_depth: int = 10
    #: APPROVAL_SMTP_HOST / _PORT / _FROM / _USER / _PASSWORD / _TLS — outgoing e-mail.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "智慧审批 <no-reply@approval.local>"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: bool = False
    #: APPROVAL_SMS_URL — HTTP gateway that sends SMS (POST JSON {to, text, key}); empty: SMS off.
    sms_url: str = ""
    #: APPROVAL_CREDIT_BUREAU_URL — credit bureau query endpoint; empty: bureau treated as down.
    credit_bureau_url: str = ""
    #: APPROVAL_HTTP_TIMEOUT — seconds for any outgoing HTTP call (bureau, SMS gateway).
    http_timeout: float = 5.0
    #: APPROVAL_DEFER_STEPS — "1" (default): a request that completes a task or starts an
    #: application commits at once and a worker runs the engine steps (the UI shows
    #: "processing"); "0": the request runs them itself (scripts and tests with no worker).
    defer_steps: bool = True
    #: APPROVAL_SWEEP_AFTER — seconds after which the sweeper publishes again an instance left
    #: `running` or a service call left `pending` (a message lost between commit and publish).
    sweep_after: float = 30.0
    #: APPROVAL_SWEEP_INTERVAL / APPROVAL_TIMER_INTERVAL — seconds between beat's sweeps and
    #: between its looks for due timers.
    sweep_interval: float = 10.0
    timer_interval: float = 5.0
    #: APPROVAL_WEB_BIND — where `approval web` (gunicorn) listens.
    web_bind: str = "127.0.0.1:8000"
    #: APPROVAL_SECURE_COOKIES — mark session cookies Secure (HTTPS only); default on in production.
    secure_cookies: bool = False
    #: APPROVAL_PROXY_HOPS — reverse proxies in front of the web app (nginx in docker-compose: 1);
    #: their X-Forwarded-For/-Proto/-Host are trusted, so client IPs and https links are right.
    proxy_hops: int = 0
    #: APPROVAL_MAX_UPLOAD_BYTES — largest uploaded document (default 10 MiB).
    max_upload_bytes: int = 10 * 1024 * 1024
    #: APPROVAL_LOGIN_MAX_FAILURES / APPROVAL_LOCKOUT_MINUTES — failed sign-ins in a row that
    #: lock an account, and for how long.
    login_max_failures: int = 5
    lockout_minutes: int = 15
    #: APPROVAL_SESSION_IDLE_MINUTES — a signed-in session ends after this much inactivity.
    session_idle_minutes: int = 30
    #: APPROVAL_TEST_SLOW_OPERATOR / APPROVAL_TEST_SLOW_COMMIT — crash tests only (seconds; 0 off):
    #: register the `test.slow` operator, and pause before every commit (engine/fault_injection).
    test_slow_operator: float = 0.0
    test_slow_commit: float = 0.0

    @property
    def documents_dir(self) -> Path:
        """Uploaded documents, outside the web root, one file per SHA-256."""
        return self.instance_dir / "documents"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if env is None else env
        instance = _instance_dir(env)
        settings = cls(
            env=env.get("APPROVAL_ENV", "development"),
            instance_dir=instance,
            database_url=env.get("APPROVAL_DATABASE_URL", f"sqlite:///{instance / 'approval.db'}"),
            broker_url=env.get("APPROVAL_BROKER_URL", f"sqla+sqlite:///{instance / 'broker.db'}"),
            secret_key=_secret_key(env, instance),
            processes_dir=Path(env.get("APPROVAL_PROCESSES_DIR", "processes")).resolve(),
            forms_dir=Path(env.get("APPROVAL_FORMS_DIR", "forms")).resolve(),
            max_file_bytes=int(env.get("APPROVAL_MAX_FILE_BYTES", 2 * 1024 * 1024)),
            script_step_limit=int(env.get("APPROVAL_SCRIPT_STEP_LIMIT", 100_000)),
            max_call_depth=int(env.get("APPROVAL_MAX_CALL_DEPTH", 10)),
            smtp_host=env.get("APPROVAL_SMTP_HOST", "127.0.0.1"),
            smtp_port=int(env.get("APPROVAL_SMTP_PORT", 1025)),
            smtp_from=env.get("APPROVAL_SMTP_FROM", "智慧审批 <no-reply@approval.local>"),
            smtp_user=env.get("APPROVAL_SMTP_USER", ""),
            smtp_password=env.get("APPROVAL_SMTP_PASSWORD", ""),
            smtp_tls=_flag(env.get("APPROVAL_SMTP_TLS", "")),
            sms_url=env.get("APPROVAL_SMS_URL", ""),
            credit_bureau_url=env.get("APPROVAL_CREDIT_BUREAU_URL", ""),
            http_timeout=float(env.get("APPROVAL_HTTP_TIMEOUT", 5.0)),
            defer_steps=_flag(env.get("APPROVAL_DEFER_STEPS", "1")),
            sweep_after=float(env.get("APPROVAL_SWEEP_AFTER", 30.0)),
            sweep_interval=float(env.get("APPROVAL_SWEEP_INTERVAL", 10.0)),
            timer_interval=float(env.get("APPROVAL_TIMER_INTERVAL", 5.0)),
            web_bind=env.get("APPROVAL_WEB_BIND", "127.0.0.1:8000"),
            secure_cookies=_flag(
                env.get(
                    "APPROVAL_SECURE_COOKIES",
                    "1" if env.get("APPROVAL_ENV") == "production" else "",
                )
            ),
            proxy_hops=int(env.get("APPROVAL_PROXY_HOPS", 0)),
            max_upload_bytes=int(env.get("APPROVAL_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
            login_max_failures=int(env.get("APPROVAL_LOGIN_MAX_FAILURES", 5)),
            lockout_minutes=int(env.get("APPROVAL_LOCKOUT_MINUTES", 15)),
            session_idle_minutes=int(env.get("APPROVAL_SESSION_IDLE_MINUTES", 30)),
            test_slow_operator=float(env.get("APPROVAL_TEST_SLOW_OPERATOR", 0.0)),
            test_slow_commit=float(env.get("APPROVAL_TEST_SLOW_COMMIT", 0.0)),
        )
        settings = replace(settings, **overrides)
        settings.check()
        return settings

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in a child process (a worker, a client)."""
        return {f"APPROVAL_{f.name.upper()}": _text(getattr(self, f.name)) for f in fields(self)}

    def check(self) -> None:
        """Refuse the embedded defaults where they would be unsafe."""
        if not self.production:
            return
        if self.database_url.startswith("sqlite"):
            raise ConfigError("APPROVAL_DATABASE_URL must name a PostgreSQL database in production")
        if self.broker_url.startswith("sqla+"):
            raise ConfigError("APPROVAL_BROKER_URL must name Redis or RabbitMQ in production")
        if len(self.secret_key) < 32:
            raise ConfigError(
                "APPROVAL_SECRET_KEY must be set (at least 32 characters) in production"
            )

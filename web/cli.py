"""The `approval` command: a Flask CLI group whose commands each call one engine function.

Decision: expected failures print `file:line: message` (or one plain sentence) and exit 1, never
a traceback; each command commits once. On the embedded default a missing or old database is
migrated on the spot; in production the command refuses and says to run `approval db upgrade`.
The process commands are thin: `web` is gunicorn over `create_app`, `worker` and `beat` become
Celery (`engine.worker`), and `run` starts the web app with a worker child process beside it.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import waitress
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from engine import accounts, audit, bundles, dispatch, fault_injection, jobs, schema, worker
from engine.config import ConfigError, Settings
from engine.db import make_engine
from engine.errors import ApprovalError, ValidationFailed
from web import create_app, settings_of
from web.extensions import db

POOLS = ["prefork", "solo", "threads"]


def _settings() -> Settings:
    return settings_of(current_app)


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def expected_failures(fn):
    """Turn the engine's expected errors into messages and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as err:
            db.session.rollback()
            _fail("\n".join(str(p) for p in err.problems))
        except (ApprovalError, ConfigError) as err:
            db.session.rollback()
            _fail(f"error: {err}")

    return wrapper


def _ready_database() -> None:
    _settings().instance_dir.mkdir(parents=True, exist_ok=True)  # the embedded files live there
    if schema.is_current(db.engine):
        return
    if _settings().production:
        _fail("the database schema is not up to date: run `approval db upgrade`")
    schema.upgrade(_settings().database_url)


def _make_app(*_args, **_kwargs):
    try:
        return create_app()
    except ConfigError as err:
        _fail(f"configuration error: {err}")


cli = FlaskGroup(
    create_app=_make_app,
    add_default_commands=False,
    add_version_option=False,
    help="Smart Approval (智慧审批): run, deploy and operate the approval system.",
)


@cli.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database to the newest schema."""
    _settings().instance_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(_settings().database_url, revision)
    click.echo(f"database upgraded to {revision}")


@cli.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@with_appcontext
@expected_failures
def validate(paths: tuple[Path, ...]) -> None:
    """Validate bundles (a bundle folder, or processes/ for all) without deploying."""
    _ready_database()
    results = [r for path in paths for r in bundles.check(db.session, _settings(), path)]
    for result in results:
        for problem in result.problems:
            click.echo(str(problem), err=problem.severity == "error")
        if result.ok:
            click.echo(f"ok: {result.key} ({len(result.tasks)} user tasks)")
    if any(not r.ok for r in results):
        sys.exit(1)


@cli.command("deploy")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--by", "actor", default="cli", show_default=True, help="Who deploys (for the audit)."
)
@with_appcontext
@expected_failures
def deploy(paths: tuple[Path, ...], actor: str) -> None:
    """Validate and deploy bundles; each changed bundle becomes a new live version."""
    _ready_database()
    results = [
        r for path in paths for r in bundles.deploy_path(db.session, _settings(), path, actor)
    ]
    db.session.commit()
    for r in results:
        if not r.created:
            click.echo(f"{r.key}: unchanged, v{r.version} stays live")
        else:
            again = f" (same content as v{r.same_as_version})" if r.same_as_version else ""
            click.echo(f"{r.key}: deployed v{r.version}{again}, live now")


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@with_appcontext
@expected_failures
def audit_verify() -> None:
    """Check every audit event against its hash chain; exit 1 on any finding."""
    _ready_database()
    findings = audit.verify(db.session, key=_settings().secret_key)
    for finding in findings:
        click.echo(finding, err=True)
    if findings:
        sys.exit(1)
    click.echo("audit log intact")


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
@expected_failures
def run(host: str, port: int) -> None:
    """Start the system on one machine: migrate, deploy processes/, serve, and run a worker
    process with embedded beat beside the web app (stopped with it)."""
    settings = _settings()
    _ready_database()
    for r in bundles.deploy_path(db.session, settings, settings.processes_dir, "system"):
        click.echo(f"{r.key}: v{r.version} live")
    if not settings.production:  # demo accounts of every role (README); never in production
        demo = accounts.ensure_demo_users(db.session, settings)
        click.echo(
            f"demo users: {', '.join(u.username for u in demo)} (password {accounts.DEMO_PASSWORD})"
        )
    db.session.commit()
    argv = worker_argv(concurrency=1, pool="solo", with_beat=True, loglevel="WARNING")
    child = subprocess.Popen(argv, env={**os.environ, **settings.to_env()}, preexec_fn=_orphan_dies)
    signal.signal(signal.SIGTERM, _stop)
    dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    click.echo(f"Smart Approval on http://{host}:{port}/ (worker pid {child.pid})")
    try:
        waitress.serve(current_app._get_current_object(), host=host, port=port, threads=8)
    finally:
        _end(child)


def _stop(_signum, _frame) -> None:
    raise SystemExit(0)  # leaves waitress through `finally`, which stops the worker


def _orphan_dies() -> None:
    """In the child: on Linux, receive SIGTERM when `approval run` dies, however it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _end(child: subprocess.Popen) -> None:
    child.terminate()  # Celery's warm shutdown: the job at hand finishes first
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()


def worker_argv(*, concurrency: int, pool: str, with_beat: bool, loglevel: str) -> list[str]:
    """The Celery worker command line that `approval worker` becomes."""
    argv = [sys.executable, "-m", "celery", "-A", "engine.worker", "worker", "--pool", pool]
    argv += ["--concurrency", str(concurrency), "--loglevel", loglevel]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return argv + (["--beat"] if with_beat else [])


def _env_settings() -> Settings:
    """Settings for a command that runs no app in this process (web's master, worker, beat)."""
    try:
        return Settings.from_env()
    except ConfigError as err:
        _fail(f"configuration error: {err}")


@cli.command("worker")
@click.option("--concurrency", default=2, show_default=True, type=int, help="Pool processes.")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(POOLS))
@click.option("--beat", "with_beat", is_flag=True, help="Run beat inside (one machine only).")
@click.option("--loglevel", default="INFO", show_default=True)
def worker_command(concurrency: int, pool: str, with_beat: bool, loglevel: str) -> None:
    """Run a Celery worker: engine steps, service calls and timers, as the broker hands them out."""
    _env_settings()
    argv = worker_argv(concurrency=concurrency, pool=pool, with_beat=with_beat, loglevel=loglevel)
    os.execv(argv[0], argv)


@cli.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run Celery beat: publishes the look for due timers and the sweep on schedule."""
    _env_settings()
    argv = [sys.executable, "-m", "celery", "-A", "engine.worker", "beat", "--loglevel", loglevel]
    os.execv(argv[0], argv)


@cli.command("web")
@click.option("--workers", default=2, show_default=True, type=int, help="Gunicorn processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per process.")
@click.option("--bind", default=None, help="host:port (default: APPROVAL_WEB_BIND).")
def web(workers: int, threads: int, bind: str | None) -> None:
    """Serve the web app with gunicorn (production); each process publishes jobs to the broker."""
    settings = _env_settings()
    engine = make_engine(settings.database_url)
    try:
        if not schema.is_current(engine):
            _fail("the database schema is not up to date: run `approval db upgrade`")
    finally:
        engine.dispose()  # before gunicorn forks: no connection is shared with a child
    options = {"bind": bind or settings.web_bind, "workers": workers, "threads": threads}
    _gunicorn(lambda: web_app(settings), options).run()


def _gunicorn(load, options: dict):
    """Gunicorn running `load()` in each worker process after the fork (no preloading)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {**options, "accesslog": "-", "graceful_timeout": 20}.items():
                self.cfg.set(key, value)

        def load(self):
            return load()

    return Server()


def web_app(settings: Settings) -> Flask:
    """One web process's app, made after the fork, with its own connection to the broker."""
    app = create_app(settings)
    dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    fault_injection.install(settings)  # crash tests only: nothing unless APPROVAL_TEST_* are set
    return app


def main() -> None:
    cli.main(prog_name="approval")


# --- people: demo accounts and accounts made by an administrator ---------------------------------


@cli.group("demo")
def demo_group() -> None:
    """Demo accounts for trying the system out (never in production)."""


@demo_group.command("users")
@with_appcontext
@expected_failures
def demo_users() -> None:
    """Create or reset the demo accounts of every role; prints names, groups, TOTP keys."""
    from engine import accounts

    _ready_database()
    users = accounts.ensure_demo_users(db.session, _settings())
    db.session.commit()
    click.echo(f"password of every demo account: {accounts.DEMO_PASSWORD}")
    for user in users:
        groups = ",".join(sorted(user.group_keys)) or "applicant"
        click.echo(f"{user.username:16} {groups:22} {user.totp_secret or '-'}")


@demo_group.command("totp")
@click.argument("username")
@with_appcontext
@expected_failures
def demo_totp(username: str) -> None:
    """Print the current authenticator code of a demo account."""
    from engine import accounts, second_factor

    secret = accounts.demo_secret(username)
    if _settings().production:
        _fail("error: demo codes are not available in production")
    if secret is None:
        _fail(f"error: `{username}` is not a demo account with an authenticator app")
    click.echo(second_factor.totp_code(secret))


@cli.group("users")
def users_group() -> None:
    """Accounts of the bank's staff."""


@users_group.command("add")
@click.argument("username")
@click.option("--group", "groups", multiple=True, help="A group key (repeat for several).")
@click.option("--name", "display_name", default="", help="The full name shown to others.")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@with_appcontext
@expected_failures
def users_add(username: str, groups: tuple[str, ...], display_name: str, password_stdin: bool):
    """Create an account; staff enrol an authenticator app at their first sign-in."""
    from engine import accounts

    _ready_database()
    password = sys.stdin.readline().rstrip("\n")
    user = accounts.add_user(
        db.session, _settings(), username, list(groups), password, display_name
    )
    db.session.commit()
    click.echo(f"user {user.username} added ({', '.join(sorted(groups)) or 'applicant'})")


@cli.group("api-token")
def token_group() -> None:
    """Tokens for the JSON API (`Authorization: Bearer <token>`)."""


@token_group.command("issue")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for (e.g. the calling system).")
@with_appcontext
@expected_failures
def token_issue(username: str, name: str) -> None:
    """Issue a token acting as USERNAME; it is printed once and stored only as a hash."""
    from engine import api_tokens

    secret = api_tokens.issue(db.session, username, name)
    db.session.commit()
    click.echo(secret)


@token_group.command("revoke")
@click.argument("username")
@click.option("--name", required=True)
@with_appcontext
@expected_failures
def token_revoke(username: str, name: str) -> None:
    """Revoke USERNAME's tokens called NAME."""
    from engine import api_tokens

    count = api_tokens.revoke(db.session, username, name)
    db.session.commit()
    click.echo(f"{count} token(s) revoked")

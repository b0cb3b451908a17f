"""The `approval` command: a Flask CLI group whose commands each call one engine function.

Decision: expected failures print `file:line: message` (or one plain sentence) and exit 1, never
a traceback; each command commits once. On the embedded default a missing or old database is
migrated on the spot; in production the command refuses and says to run `approval db upgrade`.
"""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

import click
import waitress
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from engine import audit, bundles, schema
from engine.background import EmbeddedRunner
from engine.config import ConfigError, Settings
from engine.errors import ApprovalError, ValidationFailed
from web import create_app, settings_of
from web.extensions import db


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
    """Start the system on one machine: migrate, deploy processes/, serve, run background work."""
    settings = _settings()
    _ready_database()
    for r in bundles.deploy_path(db.session, settings, settings.processes_dir, "system"):
        click.echo(f"{r.key}: v{r.version} live")
    db.session.commit()
    runner = EmbeddedRunner(settings)
    threading.Thread(target=runner.run_forever, name="embedded-runner", daemon=True).start()
    click.echo(f"Smart Approval on http://{host}:{port}/")
    waitress.serve(current_app._get_current_object(), host=host, port=port, threads=8)


def main() -> None:
    cli.main(prog_name="approval")

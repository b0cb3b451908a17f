"""Fixtures: settings → database → session (flaskr's layering).

SQLite by default: a fresh file per test. With `APPROVAL_TEST_POSTGRES_URL` set (CI sets it), the
`db_url` fixture is parametrised to also run on PostgreSQL: one uniquely named database per test
session, emptied between tests. A PostgreSQL URL that does not answer fails the run, never skips.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine import clock, schema
from engine.config import Settings
from engine.db import Base, make_engine, make_session_factory

pytest_plugins = ["tests.stubs"]

POSTGRES_URL = os.environ.get("APPROVAL_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(scope="session")
def postgres_database():
    """Create a uniquely named PostgreSQL database for this test run and drop it afterwards."""
    if not POSTGRES_URL:
        pytest.skip("APPROVAL_TEST_POSTGRES_URL is not set")
    admin_url = make_url(POSTGRES_URL)
    name = f"approval_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    schema.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        seeded = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM groups"))]
    engine.dispose()
    yield url, seeded
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """One migrated SQLite file; each test gets a copy (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    schema.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url, seeded = request.getfixturevalue("postgres_database")
    yield url
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(Base.metadata.tables["groups"].insert(), seeded)
    engine.dispose()


@pytest.fixture
def settings(db_url, tmp_path, monkeypatch):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return Settings.from_env(
        {
            "APPROVAL_INSTANCE_DIR": str(tmp_path / "instance"),
            "APPROVAL_DATABASE_URL": db_url,
            "APPROVAL_SECRET_KEY": "test-secret-key-" + "x" * 32,
            "APPROVAL_PROCESSES_DIR": os.path.join(root, "processes"),
            "APPROVAL_FORMS_DIR": os.path.join(root, "forms"),
        }
    )


@pytest.fixture
def db_engine(settings):
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine):
    return make_session_factory(db_engine)


@pytest.fixture
def session(session_factory):
    with session_factory() as session:
        yield session
        session.rollback()


@pytest.fixture(autouse=True)
def _real_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def app(settings):
    from web import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cli_runner(app):
    """Invokes the real `approval` command group against the test app."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from web.cli import cli

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app))

    return invoke

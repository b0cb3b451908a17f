"""Web fixtures: people to sign in as, a signed-in client, and the background work queue.

`sign_in` sets the Flask-Login session directly: tests of an area other than sign-in itself
should not depend on passwords, captchas and second factors (tests/web/test_auth.py covers
those through the real forms).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import bundles, dispatch, jobs
from engine.db import make_session_factory
from engine.directory import add_user
from engine.models import User


@pytest.fixture
def people(app):
    """Create users: `people("alice")` an applicant, `people("rui", "credit_reviewer")` staff."""
    from web.extensions import db

    def make(username: str, *groups: str, **fields) -> int:
        """The new user's id."""
        with app.app_context():
            user = add_user(db.session, username, list(groups))
            for name, value in fields.items():
                setattr(user, name, value)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def sign_in(client, people, app):
    """`sign_in("rui", "credit_reviewer")`: create the user if needed and sign the client in."""
    from web import access
    from web.extensions import db

    def login(username: str, *groups: str):
        with app.app_context():
            user_id = db.session.scalar(select(User.id).where(User.username == username))
        user_id = user_id or people(username, *groups)
        with app.app_context():
            version = db.session.get(User, user_id).session_version
        with client.session_transaction() as sess:
            sess.clear()
            sess["_user_id"] = str(user_id)
            sess["_fresh"] = True
            sess[access.SESSION_VERSION] = version  # as a real sign-in records it
        return user_id

    return login


@pytest.fixture
def deployed(app, settings):
    """Every bundle in processes/ deployed, as `approval run` does."""
    from web.extensions import db

    with app.app_context():
        bundles.deploy_path(db.session, settings, settings.processes_dir, "test")
        db.session.commit()


@pytest.fixture
def work(app, settings, db_engine):
    """The background queue: views publish here; `work.drain()` runs it as a worker would."""
    queue = jobs.LocalQueue()
    previous = dispatch.install(queue)
    sessions = make_session_factory(db_engine)

    class Work:
        pending = queue.work

        @staticmethod
        def drain() -> int:
            return queue.drain(sessions, settings)

    yield Work
    dispatch.install(previous)

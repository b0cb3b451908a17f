"""Alembic migrations are the schema: they build exactly the tables the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from engine import schema
from engine.db import Base, make_engine


def test_migrations_match_the_models(db_url):
    """After `upgrade head` Alembic finds no difference between database and models."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == []


def test_upgrade_seeds_the_standard_groups(db_url):
    """A fresh database knows the bank's groups that lanes name, with their supervisors."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT key, supervisor_key FROM groups")).all())
    engine.dispose()
    assert rows["credit_reviewer"] == "credit_supervisor"
    assert {"branch_manager", "risk_reviewer", "compliance_reviewer"} <= set(rows)


def test_database_is_reported_current_after_upgrade(db_url, tmp_path):
    """`is_current` is false on an empty database and true after `upgrade`."""
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(empty)
    assert not schema.is_current(engine)
    schema.upgrade(empty)
    assert schema.is_current(engine)
    engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path):
    """Every migration can be undone and redone (a bad release can be rolled back)."""
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    schema.upgrade(url)
    from alembic import command

    command.downgrade(schema.alembic_config(url), "base")
    schema.upgrade(url)
    engine = make_engine(url)
    assert schema.is_current(engine)
    engine.dispose()

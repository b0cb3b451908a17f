"""Alembic environment: migrates the database named by the caller's configuration."""

from alembic import context
from sqlalchemy import pool

import engine.models  # noqa: F401  (registers every table on the metadata)
from engine.db import Base, make_engine

config = context.config


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    db_engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with db_engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

"""Database schema upgrades through Alembic: the only way tables are created or changed.

Decision: the migration scripts ship inside the `engine` package, so `approval db upgrade` works
from any directory and in any installed copy, with no alembic.ini to find.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def is_current(db_engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    heads = set(ScriptDirectory.from_config(alembic_config(str(db_engine.url))).get_heads())
    with db_engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads

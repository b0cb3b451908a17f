"""Settings: safe embedded defaults, and production refusing them by name."""

import pytest

from engine.config import ConfigError, Settings


def test_embedded_defaults_need_no_service(tmp_path):
    """With no variables set: SQLite and a SQLite broker in the instance folder, a kept secret."""
    env = {"APPROVAL_INSTANCE_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.database_url == f"sqlite:///{tmp_path / 'approval.db'}"
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert len(settings.secret_key) == 64
    assert Settings.from_env(env).secret_key == settings.secret_key  # survives a restart


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "APPROVAL_DATABASE_URL"),
        ({"APPROVAL_DATABASE_URL": "postgresql+psycopg://db/x"}, "APPROVAL_BROKER_URL"),
        (
            {
                "APPROVAL_DATABASE_URL": "postgresql+psycopg://db/x",
                "APPROVAL_BROKER_URL": "redis://r",
            },
            "APPROVAL_SECRET_KEY",
        ),
    ],
)
def test_production_refuses_unsafe_defaults_naming_the_variable(tmp_path, env, variable):
    """APPROVAL_ENV=production with an embedded default names the variable to set."""
    env = {"APPROVAL_ENV": "production", "APPROVAL_INSTANCE_DIR": str(tmp_path), **env}
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_production_with_real_services_is_accepted(tmp_path):
    """PostgreSQL, Redis and a long secret make a valid production configuration."""
    settings = Settings.from_env(
        {
            "APPROVAL_ENV": "production",
            "APPROVAL_INSTANCE_DIR": str(tmp_path),
            "APPROVAL_DATABASE_URL": "postgresql+psycopg://db/approval",
            "APPROVAL_BROKER_URL": "redis://redis:6379/0",
            "APPROVAL_SECRET_KEY": "s" * 40,
        }
    )
    assert settings.production

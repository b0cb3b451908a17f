"""docker-compose.yml, the Dockerfile and the packaging agree with what the tests run for real.

No Docker engine runs here, so the file is read: every service with a command must be one that
tests/integration starts from that very command line, and the wiring (health checks, order,
replicas behind one port, settings) must hold together.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.config import Settings
from tests.integration import compose

REPO = compose.REPO
APP_SERVICES = {"migrate", "bundles", "web", "worker", "beat"}
IMAGE_SERVICES = {"postgres", "redis", "mailpit", "proxy"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return compose.services()


def test_every_command_in_the_compose_file_is_one_the_tests_run(services):
    """Services with a command are the app's; the integration tests start each from it."""
    with_command = {name for name, service in services.items() if "command" in service}
    assert with_command == APP_SERVICES == compose.LAUNCHED
    sources = "".join(p.read_text() for p in (REPO / "tests" / "integration").glob("*.py"))
    for name in sorted(with_command):
        assert services[name]["command"][0] == "approval"
        assert re.search(rf'\.(start|run)\("{name}"', sources), f"no test starts `{name}`"
    assert set(services) == APP_SERVICES | IMAGE_SERVICES


def test_every_long_running_service_has_a_health_check(services):
    """Health checks on everything that serves; the tests run web's and worker's for real."""
    for name in ("postgres", "redis", "mailpit", "web", "worker", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    sources = "".join(p.read_text() for p in (REPO / "tests" / "integration").glob("*.py"))
    assert 'healthy("web"' in sources and 'healthy("worker"' in sources


def test_migrations_and_bundles_come_before_the_app(services):
    """The schema is migrated, then bundles deployed, before web starts; workers wait too."""

    def after(name: str) -> dict[str, str]:
        return {dep: cond["condition"] for dep, cond in services[name]["depends_on"].items()}

    assert after("migrate") == {"postgres": "service_healthy"}
    assert after("bundles") == {"migrate": "service_completed_successfully"}
    assert after("web")["bundles"] == "service_completed_successfully"
    for name in ("worker", "beat"):
        assert after(name)["migrate"] == "service_completed_successfully"
        assert after(name)["redis"] == "service_healthy"
    assert after("proxy") == {"web": "service_healthy"}
    assert services["migrate"]["restart"] == services["bundles"]["restart"] == "no"


def test_two_web_replicas_answer_behind_one_port(services):
    """Web scales to 2 replicas with no port of their own; nginx publishes the one port."""
    web, proxy = services["web"], services["proxy"]
    assert web["deploy"]["replicas"] >= 2 and "ports" not in web
    assert web["environment"]["APPROVAL_WEB_BIND"] == "0.0.0.0:8000"
    assert proxy["ports"] == ["8000:80"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert "listen 80;" in conf and "set $web http://web:8000;" in conf
    assert "proxy_pass $web;" in conf and "resolver 127.0.0.11" in conf
    assert "worker" not in {s for s, v in services.items() if "ports" in v}


WEB_ONLY = ("APPROVAL_WEB_BIND", "APPROVAL_PROXY_HOPS")


def test_the_app_services_share_one_production_configuration(services):
    """One image and one set of settings, accepted by production mode's checks."""
    env = services["web"]["environment"]
    for name in APP_SERVICES:
        service = services[name]
        assert (service["build"], service["image"]) == (".", "smart-approval:latest")
        assert {k: v for k, v in service["environment"].items() if k not in WEB_ONLY} == {
            k: v for k, v in env.items() if k not in WEB_ONLY
        }
    assert env["APPROVAL_SECRET_KEY"].startswith("${APPROVAL_SECRET_KEY:?")
    assert env["APPROVAL_SMTP_HOST"] == "mailpit" and env["APPROVAL_SMTP_PORT"] == "1025"
    settings = Settings.from_env({**env, "APPROVAL_SECRET_KEY": "k" * 32})
    assert settings.production and settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.web_bind == "0.0.0.0:8000"
    assert settings.proxy_hops == 1  # nginx in front of every web replica


def test_the_image_installs_the_package_with_its_bundles():
    """The Dockerfile builds on python:3.11-slim with `pip install .`, bundles beside it."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "\nFROM python:3.11-slim\n" in dockerfile
    assert "RUN pip install .\n" in dockerfile
    for folder in ("engine", "web", "processes", "forms"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert "APPROVAL_PROCESSES_DIR=/app/processes" in dockerfile
    assert "USER approval" in dockerfile


def test_pip_install_ships_every_file_the_code_reads():
    """Every non-Python file in `engine/` and `web/` is package data (else the image lacks it)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]
    for package in ("engine", "web"):
        root = REPO / package
        shipped = {
            Path(found)
            for pattern in patterns.get(package, [])
            for found in glob.glob(pattern, root_dir=root, recursive=True)
        }
        for path in root.rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                assert path.relative_to(root) in shipped, f"{path} is not package data"


@pytest.mark.parametrize("command", [["worker"], ["beat"], ["web"]])
def test_a_process_command_refuses_an_unsafe_production_setup_in_one_line(command, tmp_path):
    """`approval worker|beat|web` in production on SQLite: one sentence, exit 1, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPROVAL_")}
    env.update(APPROVAL_ENV="production", APPROVAL_INSTANCE_DIR=str(tmp_path))
    approval = Path(sys.executable).with_name("approval")
    done = subprocess.run([str(approval), *command], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "configuration error: APPROVAL_DATABASE_URL must name a PostgreSQL database in production"
    )

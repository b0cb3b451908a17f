"""Fixtures for tests with real processes on real services.

`postgres_url` is a fresh database on the server `APPROVAL_TEST_POSTGRES_URL` names, `redis_url`
the flushed Redis database `APPROVAL_TEST_REDIS_URL` names (db 15 in CI). A variable that is
unset skips the tests that need its service; a service that is named but does not answer fails
them. `production` is a deployment as docker-compose.yml runs it: migrated and deployed by the
compose commands, then each test starts the services it needs (`production.start("worker")`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from engine import dispatch, jobs, worker
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from tests.integration import compose, mail

POSTGRES_URL = os.environ.get("APPROVAL_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("APPROVAL_TEST_REDIS_URL")
AMQP_URL = os.environ.get("APPROVAL_TEST_AMQP_URL")
SECRET = "integration-secret-key-" + "k" * 32


@pytest.fixture
def postgres_url():
    """A new, empty PostgreSQL database for this test (dropped after it)."""
    if not POSTGRES_URL:
        pytest.skip("APPROVAL_TEST_POSTGRES_URL is not set")
    admin_url = make_url(POSTGRES_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"approval_it_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as err:
        pytest.fail(f"APPROVAL_TEST_POSTGRES_URL is set but PostgreSQL does not answer: {err}")
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url():
    """The Redis database named by the variable, flushed before and after the test."""
    if not REDIS_URL:
        pytest.skip("APPROVAL_TEST_REDIS_URL is not set")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as err:
        pytest.fail(f"APPROVAL_TEST_REDIS_URL is set but Redis does not answer: {err}")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def amqp_url(tmp_path):
    """The RabbitMQ server named by the variable, its `approval` queue purged."""
    if not AMQP_URL:
        pytest.skip("APPROVAL_TEST_AMQP_URL is not set")
    app = worker.make_celery(deployment_settings(tmp_path, APPROVAL_BROKER_URL=AMQP_URL))
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
        app.control.purge()
    except Exception as err:  # any failure to reach it is the server's absence
        pytest.fail(f"APPROVAL_TEST_AMQP_URL is set but RabbitMQ does not answer: {err}")
    yield AMQP_URL
    app.control.purge()


def deployment_settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "APPROVAL_INSTANCE_DIR": str(tmp_path / "instance"),
            "APPROVAL_SECRET_KEY": SECRET,
            "APPROVAL_PROCESSES_DIR": str(compose.REPO / "processes"),
            "APPROVAL_FORMS_DIR": str(compose.REPO / "forms"),
            # Beat looks every second and the sweeper acts after 3 s, so tests wait seconds.
            "APPROVAL_TIMER_INTERVAL": "1",
            "APPROVAL_SWEEP_INTERVAL": "1",
            "APPROVAL_SWEEP_AFTER": "3",
            **env,
        }
    )


@dataclass
class Deployment:
    """The processes of one deployment; requests go to its `approval web` over HTTP
    (tests/integration/api.py), or this test process plays them (tests/integration/steps.py)."""

    settings: Settings
    logs: Path
    processes: list[compose.Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.database_url)
        self.sessions = make_session_factory(self.engine)

    def env(self, **extra: str) -> dict[str, str]:
        return compose.child_env(self.settings.to_env(), HOSTNAME=socket.gethostname(), **extra)

    def run(self, service: str, **extra: str) -> str:
        """Run a one-shot service (migrate, bundles) to its end; its output."""
        done = subprocess.run(
            compose.command(service),
            env=self.env(**extra),
            cwd=compose.REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, service: str, name: str | None = None, **extra: str) -> compose.Process:
        name = name or f"{service}{sum(p.name.startswith(service) for p in self.processes) + 1}"
        process = compose.Process(
            name, compose.command(service), self.env(**extra), self.logs / f"{name}.log"
        )
        self.processes.append(process)
        return process

    def serve(self, **extra: str) -> str:
        """Start `approval web` on a free port and wait for its health check; its base URL."""
        port = free_port()
        self.start("web", APPROVAL_WEB_BIND=f"127.0.0.1:{port}", **extra)
        self.wait(lambda: self.healthy("web", port), 60, "the web health check")
        return f"http://127.0.0.1:{port}"

    def healthy(self, service: str, port: int | None = None) -> bool:
        argv = compose.healthcheck(service, port)
        done = subprocess.run(argv, env=self.env(), capture_output=True, timeout=60)
        return done.returncode == 0

    def wait(self, predicate, timeout: float, what: str):
        return compose.wait_for(predicate, timeout, what, self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def production(postgres_url, redis_url, tmp_path):
    """PostgreSQL + Redis in production mode, migrated and deployed by compose's one-shots;
    this process publishes to Redis like a web process."""
    yield from _deployed(postgres_url, redis_url, tmp_path)


@pytest.fixture
def production_rabbitmq(postgres_url, amqp_url, tmp_path):
    """The same with RabbitMQ as the broker."""
    yield from _deployed(postgres_url, amqp_url, tmp_path)


def _deployed(database_url: str, broker_url: str, tmp_path: Path):
    settings = deployment_settings(
        tmp_path,
        APPROVAL_ENV="production",
        APPROVAL_DATABASE_URL=database_url,
        APPROVAL_BROKER_URL=broker_url,
    )
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(settings, tmp_path)
    deployment.run("migrate")
    deployment.run("bundles")
    previous = dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    yield deployment
    dispatch.install(previous)
    deployment.stop()


@pytest.fixture
def slow_mail():
    """A SlowMailServer on a free port, taking 0.6 s over each message."""
    server = mail.SlowMailServer(delay=0.6)
    server.port = free_port()
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    yield server
    controller.stop()

"""Browser fixtures: the web app served on a real port, Debian's Chromium driven by Playwright.

Decision: the app runs in this process (a werkzeug server thread) with a worker thread doing
the background jobs the views publish, so a test controls what a real user cannot see (the
random captcha text, the TOTP secret) while the browser goes through every real page, cookie
and form. Chromium is Debian's (`/usr/bin/chromium`, installed by `.ci/run`), never a download;
without it these tests are skipped, unless APPROVAL_TEST_REQUIRE_BROWSER=1 (CI) makes that a
failure. Screenshots go to `test-artifacts/screenshots/` (APPROVAL_TEST_ARTIFACTS).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine import bundles, dispatch, jobs
from engine.db import make_session_factory
from tests.stubs import outside_world

log = logging.getLogger(__name__)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("APPROVAL_TEST_ARTIFACTS", "test-artifacts"))


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("APPROVAL_TEST_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"{CHROMIUM} is missing: `apt-get install chromium` (see .ci/run)")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


class ThreadWorker:
    """Runs published jobs in a background thread, one at a time, as a solo worker would."""

    def __init__(self, sessions, settings) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.sessions, self.settings = sessions, settings
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def __call__(self, work: list[dispatch.Work]) -> None:
        for item in work:
            self.jobs.put(item)

    def _run(self) -> None:
        while (item := self.jobs.get()) is not None:
            try:
                jobs.HANDLERS[item.kind](self.sessions, self.settings, item.id)
            except Exception:  # a real worker retries; here the test sees the instance stall
                log.exception("job %s failed", item)

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)


@pytest.fixture
def live_settings(settings, smtp_server, http_stub):
    """Settings of a bank whose SMTP server, SMS gateway and credit bureau are local stubs."""
    return dataclasses.replace(outside_world(settings, smtp_server, http_stub), defer_steps=True)


@pytest.fixture
def live_server(live_settings, db_engine):
    """The app on http://127.0.0.1:<port>, bundles deployed, jobs run by a worker thread."""
    from web import create_app
    from web.extensions import db

    app = create_app(live_settings)
    with app.app_context():
        bundles.deploy_path(db.session, live_settings, live_settings.processes_dir, "owner")
        db.session.commit()
    worker = ThreadWorker(make_session_factory(db_engine), live_settings)
    previous = dispatch.install(worker)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    server.app = app
    yield server
    server.shutdown()
    dispatch.install(previous)
    worker.stop()


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, live_server):
    """`new_page()` → a page in a fresh browser context (a separate person's browser)."""
    contexts = []

    def make():
        context = chromium.new_context(base_url=live_server.url, locale="zh-CN")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request):
    """`screenshot(page, "name")` saves test-artifacts/screenshots/<test>-<n>-<name>.png."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    count = iter(range(1, 100))

    def shoot(page, name: str) -> Path:
        path = folder / f"{request.node.name}-{next(count):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot

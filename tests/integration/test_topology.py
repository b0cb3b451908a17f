"""The deployments, for real: compose's services on PostgreSQL + Redis, and `approval run` alone.

Each test starts the processes docker-compose.yml names (`approval web`, `worker`, `beat`) and
runs applications through them: people with API tokens apply and decide over HTTP (the JSON
API), the web processes publish to the broker, the worker processes run the steps.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from engine import dispatch, jobs, worker
from tests.factories import APPLICANT, MANAGER, REVIEWER, application, final, review
from tests.integration import api, compose, steps
from tests.integration.conftest import Deployment, deployment_settings, free_port

pytestmark = pytest.mark.timeout(300)


def get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return answer.status, answer.read()


def apply_and_decide(deployment, base_url: str) -> int:
    """An 80,000 application over HTTP: the applicant applies, the reviewer and then the
    branch manager claim and decide, the applicant reads it completed; its instance id."""
    alice = api.person(deployment, base_url, APPLICANT.username)
    rui = api.person(deployment, base_url, REVIEWER.username, REVIEWER.groups)
    meng = api.person(deployment, base_url, MANAGER.username, MANAGER.groups)
    applied = api.apply(alice, "sample_approval", application())
    api.decide(deployment, rui, applied["reference"], "Task_review", review())
    api.decide(deployment, meng, applied["reference"], "Task_manager", final())
    api.wait_completed(deployment, alice, applied["reference"])
    assert steps.all_completed(deployment, [applied["id"]])
    return applied["id"]


def test_an_application_goes_from_start_to_completed_through_redis_and_worker_processes(
    production,
):
    """Gunicorn serves the JSON API, the worker runs every step and the pre-check; health
    checks pass."""
    base_url = production.serve()
    production.start("worker")
    production.start("beat")
    production.wait(lambda: production.healthy("worker"), 60, "the worker health check")
    port = int(base_url.rsplit(":", 1)[1])
    status, body = get(port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert "sample_approval" in get(port, "/")[1].decode()

    instance_id = apply_and_decide(production, base_url)

    counts = steps.event_counts(production, instance_id)
    assert counts["service_request"] == counts["service_call"] == 1
    (call,) = steps.calls(production, [instance_id])
    # Neither this process nor the web processes run jobs: the worker process ran the call.
    assert (call.status, call.attempts, call.result) == (
        "done",
        1,
        {"complete": True, "missing": []},
    )
    assert steps.audit_problems(production) == []


def test_rabbitmq_serves_as_the_broker_too(production_rabbitmq):
    """`APPROVAL_BROKER_URL=amqp://…`: the same application, the same outcome."""
    base_url = production_rabbitmq.serve()
    production_rabbitmq.start("worker")
    instance_id = apply_and_decide(production_rabbitmq, base_url)
    (call,) = steps.calls(production_rabbitmq, [instance_id])
    assert (call.status, call.attempts) == ("done", 1)
    assert steps.audit_problems(production_rabbitmq) == []


def test_a_notification_leaves_a_worker_process_once(production, smtp_server):
    """An application made over HTTP: the applicant's e-mail reaches the mail server from the
    worker, exactly once."""
    from tests.factories import DATA, deploy_folder

    with production.sessions.begin() as session:
        deploy_folder(session, production.settings, DATA / "notify_scenario")
    base_url = production.serve()
    production.start("worker", APPROVAL_SMTP_PORT=str(smtp_server.port))
    alice = api.person(
        production, base_url, "alice", display_name="张三", email="alice@example.com", locale="zh"
    )
    form = {"event": "submitted", "to": "applicant", "amount": 80000, "opinion": "请尽快"}
    applied = api.apply(alice, "notify_scenario", form)
    api.wait_completed(production, alice, applied["reference"])
    instance_id = applied["id"]
    (mail,) = smtp_server.messages
    assert mail["To"] == "alice@example.com" and "已提交" in mail["Subject"]
    assert "80000" in mail.get_body().get_content()
    (call,) = steps.calls(production, [instance_id])
    assert (call.operator, call.status, call.attempts) == ("notify.send", "done", 1)


def test_a_due_timer_fires_once_with_two_beats_and_two_workers(production, monkeypatch):
    """Two beats ask for every due timer; each of 10 timers fires exactly once."""
    from tests.factories import deploy_scenario

    with production.sessions.begin() as session:
        deploy_scenario(session, production.settings, "short_timer")
    for _ in range(2):
        production.start("worker")
        production.start("beat")
    ids = [steps.start(production, "short_timer", APPLICANT) for _ in range(10)]
    production.wait(lambda: steps.all_completed(production, ids), 60, "every timer to fire")
    beats = [p for p in production.processes if p.name.startswith("beat")]
    production.wait(
        lambda: all(p.log.read_text().count("fire-due-timers") >= 5 for p in beats),
        30,
        "both beats to have asked a few more times",
    )
    assert steps.kinds_by_instance(production, "timer") == {i: 1 for i in ids}


def test_the_embedded_default_runs_a_worker_process_beside_the_web_app(tmp_path):
    """`approval run` on SQLite with Kombu's SQL broker: no service, an application over HTTP
    through its web app and its real worker, one stop."""
    settings = deployment_settings(tmp_path)
    port = free_port()
    argv = [str(compose.BIN / "approval"), "run", "--port", str(port)]
    env = compose.child_env(settings.to_env())
    run = compose.Process("run", argv, env, tmp_path / "run.log")
    deployment = Deployment(settings, tmp_path, [run])
    previous = dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    try:
        deployment.wait(lambda: _answers(port), 60, "`approval run` to serve")
        child = int(re.search(r"worker pid (\d+)", run.log.read_text()).group(1))
        assert compose.alive(child)
        instance_id = apply_and_decide(deployment, f"http://127.0.0.1:{port}")
        assert steps.calls(deployment, [instance_id])[0].status == "done"
    finally:
        dispatch.install(previous)
        deployment.stop()
    assert run.popen.returncode == 0
    deployment.wait(lambda: not compose.alive(child), 30, "the worker to stop with `approval run`")


def test_a_killed_approval_run_takes_its_worker_with_it(tmp_path):
    """Even a SIGKILL of `approval run` leaves no worker behind."""
    settings = deployment_settings(tmp_path)
    port = free_port()
    argv = [str(compose.BIN / "approval"), "run", "--port", str(port)]
    run = compose.Process("run", argv, compose.child_env(settings.to_env()), tmp_path / "run.log")
    try:
        compose.wait_for(lambda: _answers(port), 60, "`approval run` to serve", [run])
        child = int(re.search(r"worker pid (\d+)", run.log.read_text()).group(1))
        run.popen.kill()  # the parent alone: the child is in the same group, spared here
        run.popen.wait()
        compose.wait_for(lambda: not compose.alive(child), 30, "the orphaned worker to stop", [run])
    finally:
        run.kill()


def _answers(port: int) -> bool:
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False

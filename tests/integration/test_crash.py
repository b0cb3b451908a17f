"""Crash safety with real processes on PostgreSQL + Redis: SIGKILL, many times, then count.

Workers run with fault injection (`engine/fault_injection.py`): a slow operator and a pause
before every commit, each logged, so a kill can be aimed inside an engine step's transaction or
inside a service call. `APPROVAL_TEST_CRASH_KILLS` sets the kills per phase (default 10).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import random
import signal
import sys
import threading
import time

import pytest

from engine import runtime
from engine.models import HumanTask, ProcessInstance
from tests.factories import APPLICANT, REVIEWER, application, deploy_scenario
from tests.integration import compose, mail, steps

pytestmark = pytest.mark.timeout(900)

KILLS = int(os.environ.get("APPROVAL_TEST_CRASH_KILLS", "10"))
SLOW = {"APPROVAL_TEST_SLOW_OPERATOR": "0.4", "APPROVAL_TEST_SLOW_COMMIT": "0.15"}


def _inside(log, phase: str) -> tuple[int, str] | None:
    """A live process now inside `phase`: an operator, or the commit of an engine step."""
    for pid, what in steps.open_phases(log).items():
        step_commit = phase == "commit" and what.startswith("commit:") and what != "commit:"
        if (step_commit or what.startswith(f"{phase}:")) and compose.alive(pid):
            return pid, what
    return None


class Applicants(threading.Thread):
    """Keeps applications of `key` coming while `feeding`, and fills in the applicant's task
    `element_id` of each with `form(instance_id)` when it asks."""

    def __init__(self, deployment, key: str, element_id: str, form, limit: int = 200):
        super().__init__(daemon=True)
        self.deployment, self.key, self.element_id, self.form = deployment, key, element_id, form
        self.limit, self.ids = limit, []
        self.feeding, self.stop = threading.Event(), threading.Event()
        self.feeding.set()

    def run(self) -> None:
        while not self.stop.is_set():
            states = steps.statuses(self.deployment, self.ids)
            unfinished = sum(status != "completed" for status in states.values())
            if self.feeding.is_set() and unfinished < 8 and len(self.ids) < self.limit:
                self.ids.append(steps.start(self.deployment, self.key, APPLICANT))
            for instance_id in self.ids:
                if states.get(instance_id) == "waiting":
                    task = steps.task_of(self.deployment, APPLICANT, instance_id, self.element_id)
                    if task is not None:
                        steps.complete(self.deployment, APPLICANT, task, self.form(instance_id))
            time.sleep(0.1)

    def finish(self, timeout: float) -> list[int]:
        """Stop starting more; wait until every application started has completed."""
        self.feeding.clear()
        try:
            self.deployment.wait(
                lambda: steps.all_completed(self.deployment, self.ids), timeout, "every one"
            )
        finally:
            self.stop.set()
            self.join()
        return self.ids


def _kill(pid: int, workers: list, n: int, kills: collections.Counter, phase: str) -> bool:
    """Kill the pool process `pid` (even n) or its whole worker (odd n), which then restarts;
    False if the process had already gone (nothing is counted then)."""
    try:
        if n % 2 == 0:  # the pool process alone: its parent hands the job back at once
            os.kill(pid, signal.SIGKILL)
            kills[f"{phase} (pool process)"] += 1
            return True
        (hit,) = [w for w in workers if w.alive() and w.pid == os.getpgid(pid)]
    except (ProcessLookupError, ValueError):
        return False
    hit.kill()  # the whole worker, as if its machine died: the sweeper finds the work
    hit.start()
    kills[f"{phase} (whole worker)"] += 1
    return True


def test_workers_killed_inside_steps_and_service_calls_lose_nothing_and_apply_nothing_twice(
    production, monkeypatch
):
    """SIGKILL aimed inside operators and inside step commits, a pool process or a whole
    worker at a time: every application completes, each call applied exactly once."""
    steps.register_slow_operator(monkeypatch)
    with production.sessions.begin() as session:
        deploy_scenario(session, production.settings, "crash_course")
    workers = [production.start("worker", **SLOW) for _ in range(2)]
    production.start("beat")
    log = production.settings.instance_dir / "faults.log"
    applicants = Applicants(production, "crash_course", "Task_confirm", lambda _: {})
    applicants.start()
    kills: collections.Counter = collections.Counter()
    rng = random.Random(6)
    try:
        for n in range(2 * KILLS):
            time.sleep(rng.uniform(0.2, 1.0))  # let work move on between kills
            phase = ("operator", "commit")[n % 2]
            pid, _ = production.wait(lambda p=phase: _inside(log, p), 60, f"a {phase}")
            _kill(pid, workers, n // 2, kills, phase)
    except BaseException:
        applicants.stop.set()
        raise
    ids = applicants.finish(180)

    for instance_id in ids:
        counts = steps.event_counts(production, instance_id)
        assert (counts["start"], counts["complete"], counts["completed"]) == (1, 1, 1)
        assert counts["service_request"] == counts["service_call"] == 2, (instance_id, counts)
    calls = steps.calls(production, ids)
    assert len(calls) == 2 * len(ids)
    assert {(c.status, c.attempts) for c in calls} == {("done", 1)}  # applied once each
    assert steps.audit_problems(production) == []

    runs = collections.Counter(
        what for phase, what, _ in steps.fault_phases(log) if phase == "begin"
    )
    rerun = sum(1 for what, n in runs.items() if what.startswith("operator:") and n > 1)
    print(f"\ncrash loop: {len(ids)} applications, {len(calls)} calls, kills {dict(kills)}")
    print(f"operators run again after a kill: {rerun}")
    assert sum(kills.values()) == 2 * KILLS and rerun >= 1


def test_workers_killed_while_sending_notifications_send_each_message_once(production, slow_mail):
    """SIGKILL aimed at the worker talking to the mail server, again and again: every
    applicant's e-mail arrives exactly once and every application completes."""
    from engine import directory
    from tests.factories import DATA, deploy_folder

    with production.sessions.begin() as session:
        deploy_folder(session, production.settings, DATA / "notify_scenario")
        alice = directory.add_user(session, "alice", [], display_name="张三")
        alice.email, alice.locale = "alice@example.com", "zh"
    # A dead sender's claim on a message lasts 6 network timeouts: 6 s here.
    smtp = {"APPROVAL_SMTP_PORT": str(slow_mail.port), "APPROVAL_HTTP_TIMEOUT": "1"}
    workers = [production.start("worker", **smtp) for _ in range(2)]
    production.start("beat")

    def form(instance_id: int) -> dict:  # the amount tells whose e-mail it is
        amount = 10000 + instance_id
        return {"event": "submitted", "to": "applicant", "amount": amount, "opinion": "请尽快"}

    applicants = Applicants(production, "notify_scenario", "Task_apply", form)
    applicants.start()
    kills: collections.Counter = collections.Counter()
    rng, spared = random.Random(7), set()
    found = functools.partial(mail.sender, slow_mail, workers, spared)
    try:
        while sum(kills.values()) < KILLS:
            time.sleep(rng.uniform(0.2, 1.0))
            pid, amount = production.wait(found, 60, "a message being sent")
            if _kill(pid, workers, sum(kills.values()), kills, "sending"):
                spared.update({amount} | {a for _, a in list(slow_mail.sending.values())})
    except BaseException:
        applicants.stop.set()
        raise
    ids = applicants.finish(240)

    amounts = collections.Counter(slow_mail.amounts)
    assert amounts == {10000 + i: 1 for i in ids}  # one e-mail per application, none twice
    for instance_id in ids:
        assert steps.event_counts(production, instance_id)["service_call"] == 1
    print(
        f"\nnotification loop: {len(ids)} applications, {len(slow_mail.amounts)} e-mails, "
        f"kills {dict(kills)}"
    )
    assert sum(kills.values()) == KILLS


def _completion_state(deployment, instance_id: int, task_id: int, version_before: int) -> str:
    """ "fully" or "not at all"; anything in between fails the test."""
    with deployment.sessions() as session:
        human = session.get(HumanTask, task_id)
        row = session.get(ProcessInstance, instance_id)
        loaded = runtime.load(session, deployment.settings, instance_id)
        submitted = any(t.data.get("amount") == 80000 for t in loaded.workflow.get_tasks())
        kinds = steps.event_counts(deployment, instance_id)
    if human.state == "completed":
        assert human.submitted == application() and submitted and kinds["complete"] == 1
        assert row.lock_version > version_before and row.status in ("running", "waiting")
        return "fully"
    assert human.state == "ready" and not submitted and kinds["complete"] == 0
    assert (row.lock_version, row.status) == (version_before, "waiting")
    return "not at all"


def test_a_web_process_killed_during_a_completion_leaves_it_done_fully_or_not_at_all(production):
    """Requests killed at moments spread over their life (before, inside and after the
    commit): each completion is all there or not there, and every application moves on."""
    production.start("worker")
    production.start("beat")
    ids = [steps.start(production, "sample_approval", APPLICANT) for _ in range(16)]
    outcomes: collections.Counter = collections.Counter()
    log = production.settings.instance_dir / "faults.log"
    for n, instance_id in enumerate(ids):
        task = production.wait(
            lambda i=instance_id: steps.task_of(production, APPLICANT, i, "Task_apply"), 60, "form"
        )
        with production.sessions() as session:
            version = session.get(ProcessInstance, instance_id).lock_version
        argv = [sys.executable, "-m", "tests.integration.client", str(task.id), "alice", ""]
        env = production.env(APPROVAL_TEST_SLOW_COMMIT="0.5")
        client = compose.Process(
            f"client{n}", [*argv, json.dumps(application())], env, production.logs / "c.log"
        )
        time.sleep(0.5 + n * 0.12)  # from before the transaction to after the commit
        client.kill()
        killed = client.popen.returncode == -signal.SIGKILL
        outcome = _completion_state(production, instance_id, task.id, version)
        outcomes[(outcome, "killed" if killed else "finished")] += 1
        if outcome == "not at all":
            assert steps.complete(production, APPLICANT, task, application())
    in_commit = sum(1 for what in steps.open_phases(log).values() if what.startswith("commit"))
    production.wait(
        lambda: all(steps.task_of(production, REVIEWER, i, "Task_review") for i in ids),
        120,
        "every application to reach its review",
    )
    print(f"\nkilled requests: {dict(outcomes)}; killed inside the commit pause: {in_commit}")
    assert outcomes[("fully", "killed")] + outcomes[("fully", "finished")] >= 1
    assert outcomes[("not at all", "killed")] >= 1

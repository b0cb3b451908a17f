"""Crash safety with real processes on PostgreSQL + Redis: SIGKILL, many times, then count.

Workers run with fault injection (`engine/fault_injection.py`): a slow operator and a pause
before every commit, each logged, so a kill can be aimed inside an engine step's transaction or
inside a service call. `APPROVAL_TEST_CRASH_KILLS` sets the kills per phase (default 10). The
web processes (gunicorn, `web.cli.web_app`) get the slow commit too, so a kill can be
aimed inside a request served over HTTP.
"""

from __future__ import annotations

import collections
import functools
import os
import random
import signal
import threading
import time

import pytest
import requests

from engine import runtime
from engine.models import HumanTask, ProcessInstance
from tests.factories import APPLICANT, MANAGER, REVIEWER, application, deploy_scenario, review
from tests.integration import api, compose, mail, steps

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
    """ "fully" or "not at all" for the review of the application; anything in between fails."""
    with deployment.sessions() as session:
        human = session.get(HumanTask, task_id)
        row = session.get(ProcessInstance, instance_id)
        loaded = runtime.load(session, deployment.settings, instance_id)
        decided = any(t.data.get("decision") == "approve" for t in loaded.workflow.get_tasks())
        kinds = steps.event_counts(deployment, instance_id)
    if human.state == "completed":
        assert human.submitted == review() and decided and kinds["complete"] == 2
        assert row.lock_version > version_before and row.status in ("running", "waiting")
        return "fully"
    assert human.state == "ready" and not decided and kinds["complete"] == 1
    assert (row.lock_version, row.status) == (version_before, "waiting")
    return "not at all"


#: Where a request is when its web process is killed: inside the pause before its first commit
#: (the authentication's), inside the pause before its second (the completion's), or once the
#: completion is in the database (before or after the answer and the publishing leave).
AIMS = ("authentication", "completion commit", "after the commit")


def _aim(deployment, log, aim: str, seen: int, task_id: int, answers: list) -> int | None:
    """The live web process at `aim` now, from the fault-injection log's lines after `seen`
    (the request's own: nothing else runs in the web processes meanwhile)."""
    if answers and aim != AIMS[2]:
        answer = answers[0]
        raise AssertionError(f"answered before the {aim}: {getattr(answer, 'text', answer)}")
    lines = steps.fault_phases(log)[seen:]
    begun = [pid for phase, _, pid in lines if phase == "begin"]
    ended = [pid for phase, _, pid in lines if phase == "end"]
    if aim == AIMS[2]:
        with deployment.sessions() as session:
            committed = session.get(HumanTask, task_id).state == "completed"
        pid = begun[1] if committed and len(begun) > 1 else None
    else:
        n = AIMS.index(aim)
        pid = begun[n] if len(begun) > n and len(ended) == n else None
    return pid if pid is not None and compose.alive(pid) else None


def _request(person: api.Person, task_id: int, answers: list) -> threading.Thread:
    """POST the review in a thread; `answers` gets the response or the connection error."""

    def send() -> None:
        try:
            answers.append(person.post(f"/api/tasks/{task_id}/complete", {"data": review()}))
        except requests.ConnectionError as err:
            answers.append(err)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_web_process_killed_during_a_completion_leaves_it_done_fully_or_not_at_all(production):
    """The gunicorn process serving a reviewer's POST /api/tasks/<id>/complete is SIGKILLed
    inside the authentication, inside the completion's commit or just after it: a kill before
    the commit leaves nothing, after it everything, and every application moves on."""
    base_url = production.serve(APPROVAL_TEST_SLOW_COMMIT="0.5")
    production.start("worker")
    production.start("beat")
    rui = api.person(production, base_url, REVIEWER.username, REVIEWER.groups)
    ids = [steps.start(production, "sample_approval", APPLICANT) for _ in range(3 * len(AIMS))]
    for instance_id in ids:
        steps.act(production, APPLICANT, instance_id, "Task_apply", application())
    log = production.settings.instance_dir / "faults.log"
    outcomes: collections.Counter = collections.Counter()
    for n, instance_id in enumerate(ids):
        aim = AIMS[n % len(AIMS)]
        task = production.wait(
            lambda i=instance_id: steps.task_of(production, REVIEWER, i, "Task_review"),
            60,
            "the review",
        )
        with production.sessions() as session:
            version = session.get(ProcessInstance, instance_id).lock_version
        production.wait(lambda: production.healthy("web", _port(base_url)), 60, "gunicorn")
        seen, answers = len(steps.fault_phases(log)), []
        request = _request(rui, task.id, answers)
        at_aim = functools.partial(_aim, production, log, aim, seen, task.id, answers)
        pid = compose.wait_for(at_aim, 30, f"the {aim}", production.processes, interval=0.005)
        os.kill(pid, signal.SIGKILL)  # the gunicorn master starts a new web process
        request.join(30)
        (answer,) = answers
        killed = isinstance(answer, requests.ConnectionError)
        # Before the commit, the answer cannot have left; just after it, it may have.
        assert killed or aim == "after the commit", f"{aim}: answered {answer}"
        outcome = _completion_state(production, instance_id, task.id, version)
        outcomes[(aim, outcome, "killed" if killed else "answered")] += 1
        if outcome == "not at all":
            assert steps.complete(production, REVIEWER, task, review())
    production.wait(
        lambda: all(steps.task_of(production, MANAGER, i, "Task_manager") for i in ids),
        120,
        "every application to reach its branch manager",
    )
    print(f"\nkilled web processes: {dict(outcomes)}")
    assert outcomes[("authentication", "not at all", "killed")] == 3
    assert outcomes[("completion commit", "not at all", "killed")] == 3
    after = [o for (aim, o, _), count in outcomes.items() for _ in range(count) if aim == AIMS[2]]
    assert after == ["fully"] * 3


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])

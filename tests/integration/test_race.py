"""Races between processes on PostgreSQL: many at once on one task, or on one due timer.

Each contender is its own process (`multiprocessing`, spawned), released together at a barrier,
with a slowed-down commit so that every transaction overlaps every other.
"""

from __future__ import annotations

import collections
import multiprocessing
import time

import pytest

from engine import clock, runtime, schema, service_calls
from engine.db import make_engine, make_session_factory
from engine.directory import Actor
from engine.models import HumanTask, ProcessInstance
from tests.factories import (
    APPLICANT,
    application,
    deploy_sample,
    deploy_scenario,
    events,
    open_task,
    review,
)
from tests.integration import client
from tests.integration.conftest import deployment_settings

pytestmark = pytest.mark.timeout(300)
CONTENDERS = 8


@pytest.fixture
def database(postgres_url, tmp_path):
    """A migrated PostgreSQL database; settings whose commits pause 0.3 s in the contenders."""
    schema.upgrade(postgres_url)
    settings = deployment_settings(
        tmp_path, APPROVAL_DATABASE_URL=postgres_url, APPROVAL_TEST_SLOW_COMMIT="0.3"
    )
    engine = make_engine(postgres_url)
    yield settings, make_session_factory(engine)
    engine.dispose()


def contend(target, settings, argsets: list[tuple]) -> list:
    """Run `target(env, barrier, results, *args)` once per argument set, all at once."""
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(len(argsets)), spawn.Queue()
    env = settings.to_env()
    processes = [
        spawn.Process(target=target, args=(env, barrier, results, *args)) for args in argsets
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    return outcomes


def test_many_reviewers_completing_one_task_at_once_one_wins_the_rest_conflict(database):
    """Eight reviewers submit the same review at the same moment: one decision, seven 409s."""
    settings, sessions = database
    with sessions.begin() as session:
        deploy_sample(session, settings)
    with sessions.begin() as session:
        instance_id = runtime.start(session, settings, "sample_approval", {}, APPLICANT).id
    task = open_task(sessions, APPLICANT, "Task_apply")
    with sessions.begin() as session:
        runtime.complete_task(session, settings, task.id, APPLICANT, application())
    service_calls.run_due(sessions, settings)
    reviewers = [Actor(f"reviewer{n}", frozenset({"credit_reviewer"})) for n in range(CONTENDERS)]
    review_task = open_task(sessions, reviewers[0], "Task_review")

    argsets = [(review_task.id, actor, review()) for actor in reviewers]
    outcomes = dict(contend(client.race, settings, argsets))

    winners = [name for name, outcome in outcomes.items() if outcome == "ok"]
    losers = [o for o in outcomes.values() if o.startswith("conflict: ")]
    assert len(winners) == 1 and len(losers) == CONTENDERS - 1, outcomes
    with sessions() as session:
        decided = session.get(HumanTask, review_task.id)
        assert (decided.state, decided.completed_by) == ("completed", winners[0])
        assert session.get(ProcessInstance, instance_id).status == "running"
    assert [kind for kind, _ in events(sessions, instance_id)].count("complete") == 2


def test_a_due_timer_fired_by_many_processes_at_once_fires_once(database):
    """Eight workers fire the same due timer together: it fires once, nobody fails."""
    settings, sessions = database
    with sessions.begin() as session:
        deploy_scenario(session, settings, "short_timer")
    with sessions.begin() as session:
        instance_id = runtime.start(session, settings, "short_timer", {}, APPLICANT).id
    with sessions() as session:
        due = session.get(ProcessInstance, instance_id).next_due_at
    time.sleep(max(0.0, (due - clock.now()).total_seconds()) + 0.2)

    outcomes = contend(client.fire, settings, [(instance_id,)] * CONTENDERS)

    print(f"\n{CONTENDERS} firings of one timer: {collections.Counter(outcomes)}")
    assert outcomes.count("fired") == 1, outcomes
    assert set(outcomes) <= {"fired", "conflict", "not due"}, outcomes
    kinds = [kind for kind, _ in events(sessions, instance_id)]
    assert (kinds.count("timer"), kinds[-1]) == (1, "completed")

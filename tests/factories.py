"""Plain factory functions for engine tests: people, bundles, form data, and reading the rows back.

Every engine step in a test runs in its own transaction (`session_factory.begin()`), and every
check reads the rows afresh, so the tests prove what survives a restart.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine import audit, bundles, inbox, operators, runtime
from engine.directory import Actor
from engine.models import HumanTask, ProcessInstance, ServiceCall

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SAMPLE = "sample_approval"

APPLICANT = Actor("alice")
OTHER_APPLICANT = Actor("bob")
REVIEWER = Actor("rui", frozenset({"credit_reviewer"}))
SECOND_REVIEWER = Actor("rong", frozenset({"credit_reviewer"}))
MANAGER = Actor("meng", frozenset({"branch_manager"}))
SUPERVISOR = Actor("su", frozenset({"credit_supervisor"}))
OWNER = "owner"


def application(**changes: Any) -> dict[str, Any]:
    """The sample bundle's application form, filled in correctly."""
    return {"applicant_name": "张三", "amount": 80000, "purpose": "travel", **changes}


def review(decision: str = "approve") -> dict[str, Any]:
    return {"decision": decision, "opinion": "资料齐全 looks fine"}


def final(decision: str = "approve") -> dict[str, Any]:
    return {"final_decision": decision, "opinion": "同意 agreed"}


# --- bundles -----------------------------------------------------------------------------------


def deploy_sample(session, settings) -> bundles.DeployResult:
    return bundles.deploy_path(session, settings, REPO / "processes" / SAMPLE, OWNER)[0]


def deploy_scenario(session, settings, name: str) -> bundles.DeployResult:
    """Deploy the bundle of `tests/data/<name>/`."""
    return deploy_folder(session, settings, DATA / name)


def deploy_folder(session, settings, root: Path) -> bundles.DeployResult:
    """Deploy the one bundle under `root/processes/` with the forms of `root/forms/`."""
    settings = dataclasses.replace(settings, forms_dir=root / "forms")
    return bundles.deploy_path(session, settings, root / "processes", OWNER)[0]


def sample_copy(root: Path, file: str, *edits: tuple[str, str]) -> Path:
    """The sample bundle copied under `root`, with each (old, new) edit made in `file`."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(REPO / "processes" / SAMPLE, root / "processes" / SAMPLE)
    shutil.copytree(REPO / "forms" / SAMPLE, root / "forms" / SAMPLE)
    path = root / "processes" / SAMPLE / file
    text = path.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return root


# --- steps, each in its own transaction -------------------------------------------------------


def start(session_factory, settings, key: str = SAMPLE, actor: Actor = APPLICANT) -> int:
    """Start the live version of `key`; the instance id."""
    with session_factory.begin() as session:
        return runtime.start(session, settings, key, {}, actor).id


def complete(session_factory, settings, actor: Actor, element_id: str, data: dict) -> None:
    """`actor` completes the open task `element_id` from their inbox."""
    task = open_task(session_factory, actor, element_id)
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, actor, data)


# --- reading back ------------------------------------------------------------------------------


def instance(session_factory, instance_id: int) -> ProcessInstance:
    with session_factory() as session:
        return session.get(ProcessInstance, instance_id)


def human_tasks(session_factory, instance_id: int) -> list[HumanTask]:
    with session_factory() as session:
        query = select(HumanTask).where(HumanTask.instance_id == instance_id)
        return list(session.scalars(query.order_by(HumanTask.id)))


def task_states(session_factory, instance_id: int) -> list[tuple[str, str]]:
    """(element id, state) of every human task row of the instance, oldest first."""
    return [(t.element_id, t.state) for t in human_tasks(session_factory, instance_id)]


def calls_of(session_factory, instance_id: int) -> list[ServiceCall]:
    with session_factory() as session:
        query = select(ServiceCall).where(ServiceCall.instance_id == instance_id)
        return list(session.scalars(query.order_by(ServiceCall.id)))


def events(session_factory, instance_id: int) -> list[tuple[str, str]]:
    """(kind, actor) of the instance's audit events, in order."""
    with session_factory() as session:
        return [(e.kind, e.actor) for e in audit.events_for_instance(session, instance_id)]


def event_data(session_factory, instance_id: int, kind: str) -> list[dict]:
    with session_factory() as session:
        found = audit.events_for_instance(session, instance_id)
        return [e.data for e in found if e.kind == kind]


def audit_problems(session_factory, settings) -> list[str]:
    with session_factory() as session:
        return audit.verify(session, key=settings.secret_key)


def open_task(session_factory, actor: Actor, element_id: str) -> inbox.TaskView:
    """The one open task `element_id` in `actor`'s inbox."""
    with session_factory() as session:
        found = [t for t in inbox.open_tasks(session, actor) if t.element_id == element_id]
    assert len(found) == 1, found
    return found[0]


def engine_data(session_factory, settings, instance_id: int) -> dict[str, Any]:
    """Every data item any engine task of the instance holds, as stored (later tasks win)."""
    with session_factory() as session:
        loaded = runtime.load(session, settings, instance_id)
        merged: dict[str, Any] = {}
        for task in loaded.workflow.get_tasks():
            merged.update(task.data)
        return merged


def register_operators(monkeypatch) -> dict[str, Any]:
    """Register `test.later` (answers later) and `test.flaky` (fails while `switch['down']`).

    The registry is restored after the test, so other tests see only the real operators.
    """
    monkeypatch.setattr(operators, "_REGISTRY", dict(operators._REGISTRY))
    switch: dict[str, Any] = {"down": True, "calls": 0}

    @operators.operator("test.later")
    def later(params, call):
        switch["calls"] += 1
        return operators.WAIT

    @operators.operator("test.flaky")
    def flaky(params, call):
        switch["calls"] += 1
        if switch["down"]:
            raise operators.OperatorFailed("the scoring service is down", retry=True)
        return {"value": 7}

    return switch

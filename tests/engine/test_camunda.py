"""Camunda 7 diagrams run end to end: deploy, start, every user task completed, the end reached.

Each scenario in tests/data/camunda_*/ is written as Camunda Modeler writes it (camunda:
attributes, JUEL, FEEL in the decision tables). Every step runs in its own transaction and reads
the rows back, so each test proves what survives a restart between the steps.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import clock, runtime, service_calls, sources, spiff, timers, validation
from engine.directory import Actor
from engine.errors import Invalid
from engine.models import BundleFile
from tests.factories import (
    APPLICANT,
    DATA,
    MANAGER,
    REVIEWER,
    calls_of,
    complete,
    deploy_scenario,
    engine_data,
    event_data,
    events,
    human_tasks,
    instance,
    open_task,
    register_operators,
    start,
    task_states,
)

LOAN = "camunda_loan"
EXPENSES = "camunda_expenses"
RUI, RONG = Actor("rui"), Actor("rong")


def deploy(session_factory, settings, name: str):
    with session_factory.begin() as session:
        return deploy_scenario(session, settings, name)


def apply(session_factory, settings, **fields) -> int:
    """Start the loan as the applicant, fill in the generated form, run the pre-check."""
    instance_id = start(session_factory, settings, LOAN)
    data = {"applicant_name": "张三", "amount": 150000, "purpose": "car", "secured": True}
    complete(session_factory, settings, APPLICANT, "Task_apply", {**data, **fields})
    assert service_calls.run_due(session_factory, settings) == 1
    return instance_id


def test_a_camunda_loan_runs_from_the_applicant_to_the_manager(session_factory, settings):
    """Initiator, generated form, external topic, DRD, JUEL gateways, candidate groups and users."""
    deployed = deploy(session_factory, settings, LOAN)
    assert [w.element_id for w in deployed.warnings] == ["DataStore_archive"]
    instance_id = apply(session_factory, settings)
    (call,) = calls_of(session_factory, instance_id)
    assert (call.operator, call.params) == (
        "checks.required_fields",
        {
            "record": {"applicant_name": "张三", "amount": 150000},
            "required": ["applicant_name", "amount"],
        },
    )
    review = {"decision": "approve", "opinion": "资料齐全"}
    complete(session_factory, settings, REVIEWER, "Task_review", review)
    complete(session_factory, settings, MANAGER, "Task_manager", {})

    assert instance(session_factory, instance_id).status == "completed"
    rows = human_tasks(session_factory, instance_id)
    assert [(t.element_id, t.group_key, t.assignee, t.completed_by) for t in rows] == [
        ("Task_apply", None, "alice", "alice"),
        ("Task_review", "credit_reviewer", None, "rui"),
        ("Task_manager", None, "meng", "meng"),
    ]
    data = engine_data(session_factory, settings, instance_id)
    assert (data["precheck_ok"], data["route"], data["reviewed"]) == (True, "manager", True)
    assert "risk" not in data  # a required decision's outputs stay inside the decision
    assert event_data(session_factory, instance_id, "completed") == [{"end": "EndEvent_1"}]


def test_the_due_date_of_a_camunda_task_is_its_sla(session_factory, settings):
    """`camunda:dueDate="P2D"` puts the review's due time two days after it became ready."""
    deploy(session_factory, settings, LOAN)
    instance_id = apply(session_factory, settings)
    review = human_tasks(session_factory, instance_id)[-1]
    assert review.element_id == "Task_review"
    assert abs(review.due_at - (review.created_at + timedelta(days=2))) < timedelta(seconds=5)


def test_a_small_loan_is_decided_by_the_drd_and_passes_the_plain_task(session_factory, settings):
    """A low risk is routed `auto`: no review, and Camunda's plain task just passes."""
    deploy(session_factory, settings, LOAN)
    instance_id = apply(session_factory, settings, amount=15000)
    assert instance(session_factory, instance_id).status == "completed"
    assert task_states(session_factory, instance_id) == [("Task_apply", "completed")]
    assert engine_data(session_factory, settings, instance_id)["route"] == "auto"


def test_a_generated_form_is_a_json_schema_stored_with_the_version(session_factory, settings):
    """formField types, enum values, defaults, required and min/max become JSON Schema."""
    deploy(session_factory, settings, LOAN)
    with session_factory() as session:
        content = session.scalar(
            select(BundleFile.content).where(
                BundleFile.path == "forms/camunda_loan/Task_apply-generated-schema.json"
            )
        )
    assert json.loads(content) == {
        "title": "Fill in the application",
        "type": "object",
        "properties": {
            "applicant_name": {"type": "string", "title": "Name", "minLength": 2},
            "amount": {
                "type": "integer",
                "title": "Amount",
                "default": 10000,
                "minimum": 1000,
                "maximum": 500000,
            },
            "purpose": {
                "type": "string",
                "title": "Purpose",
                "enum": ["travel", "car"],
                "enumNames": ["Travel", "Car"],
                "default": "travel",
            },
            "secured": {"type": "boolean", "title": "Secured", "default": False},
            "start_date": {"type": "string", "format": "date", "title": "Start"},
        },
        "additionalProperties": False,
        "required": ["applicant_name", "amount"],
    }


def test_a_generated_form_refuses_what_its_fields_do_not_allow(session_factory, settings):
    """Every field at fault is listed, as for a JSON Schema form written by hand."""
    deploy(session_factory, settings, LOAN)
    start(session_factory, settings, LOAN)
    task = open_task(session_factory, APPLICANT, "Task_apply")
    bad = {"amount": 10, "purpose": "boat", "start_date": "31/12/2025", "extra": 1}
    with pytest.raises(Invalid) as refused, session_factory.begin() as session:
        runtime.complete_task(session, settings, task.id, APPLICANT, bad)
    assert [e.field for e in refused.value.errors] == [
        "applicant_name",
        "amount",
        "purpose",
        "start_date",
        "extra",
    ]


def test_an_expense_claim_goes_to_the_groups_the_drd_collects(session_factory, settings):
    """collectEntries gives the approver groups; `${approver_groups}` gives the task to them."""
    deploy(session_factory, settings, EXPENSES)
    instance_id = start(session_factory, settings, EXPENSES)
    claim = {"amount": 120, "category": "office", "description": "纸张 paper"}
    complete(session_factory, settings, APPLICANT, "Task_enter", claim)
    approve = human_tasks(session_factory, instance_id)[-1]
    assert (approve.element_id, approve.group_key, approve.assignee) == (
        "Task_approve",
        "credit_reviewer",
        None,
    )
    data = engine_data(session_factory, settings, instance_id)
    assert (data["approver_groups"], data["claim_summary"]) == (
        ["credit_reviewer"],
        "office claim of 120",
    )
    decision = {"approved": True, "payment": {"iban": "CN00 0000"}}
    complete(session_factory, settings, REVIEWER, "Task_approve", decision)
    assert service_calls.run_due(session_factory, settings) == 1
    (call,) = calls_of(session_factory, instance_id)
    assert call.params == {"record": {"iban": "CN00 0000"}, "required": ["iban"]}
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_paid"}]


def test_a_large_claim_is_refused_and_goes_back_to_the_claimant(session_factory, settings):
    """Two collected groups: the first gets the task; `${claimant}` brings it back to alice."""
    deploy(session_factory, settings, EXPENSES)
    instance_id = start(session_factory, settings, EXPENSES)
    complete(
        session_factory, settings, APPLICANT, "Task_enter", {"amount": 9000, "category": "travel"}
    )
    assert engine_data(session_factory, settings, instance_id)["approver_groups"] == [
        "branch_manager",
        "credit_supervisor",
    ]
    complete(session_factory, settings, MANAGER, "Task_approve", {"approved": False})
    assert human_tasks(session_factory, instance_id)[-1].assignee == "alice"
    complete(session_factory, settings, APPLICANT, "Task_clarify", {})
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_clarified"}]


def test_iso_timers_wait_remind_and_pass_a_date(session_factory, settings):
    """`${cooling_off}` (PT30M) waits, R3/PT1H reminds rui three times, a past date passes."""
    deploy(session_factory, settings, "camunda_timers")
    instance_id = start(session_factory, settings, "camunda_timers")
    assert task_states(session_factory, instance_id) == []
    clock.travel(timedelta(minutes=31))
    assert timers.advance_due(session_factory, settings) == 1
    assert task_states(session_factory, instance_id) == [("Task_review", "ready")]
    assert human_tasks(session_factory, instance_id)[0].assignee == "rui"  # a literal assignee
    for _ in range(4):
        clock.travel(timedelta(hours=1))
        timers.advance_due(session_factory, settings)
    assert [kind for kind, _ in events(session_factory, instance_id)].count("timer") == 4
    assert engine_data(session_factory, settings, instance_id)["reminded"] is True
    complete(session_factory, settings, REVIEWER, "Task_review", {})
    row = instance(session_factory, instance_id)
    assert (row.status, row.next_due_at) == ("completed", None)


def test_a_collection_gives_each_reviewer_a_task_then_a_topic_gets_all_data(
    session_factory, settings, monkeypatch
):
    """camunda:collection/elementVariable with `${reviewer}`; an external task without inputs
    sends every variable and its answer joins the data."""
    switch = register_operators(monkeypatch)
    switch["down"] = False
    deploy(session_factory, settings, "camunda_four_eyes")
    instance_id = start(session_factory, settings, "camunda_four_eyes")
    reviews = human_tasks(session_factory, instance_id)
    assert [(t.assignee, t.group_key) for t in reviews] == [("rui", None), ("rong", None)]
    complete(session_factory, settings, RUI, "Task_review [child]", {})
    complete(session_factory, settings, RONG, "Task_review [child]", {})
    assert service_calls.run_due(session_factory, settings) == 1
    (call,) = calls_of(session_factory, instance_id)
    assert call.params["reviewers"] == ["rui", "rong"]
    assert engine_data(session_factory, settings, instance_id)["value"] == 7
    assert instance(session_factory, instance_id).status == "completed"


def test_a_call_activity_maps_variables_in_and_out(session_factory, settings):
    """camunda:in (source, sourceExpression, variables="all") and camunda:out reach the subprocess
    and come back."""
    deploy(session_factory, settings, "camunda_call")
    with session_factory.begin() as session:
        instance_id = runtime.start(
            session, settings, "camunda_call", {"amount": 120000}, APPLICANT
        ).id
    data = engine_data(session_factory, settings, instance_id)
    assert (data["loan_amount"], data["large"], data["credit_score"]) == (120000, True, 17)
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_good"}]


def test_the_initiator_variable_holds_the_starters_name(session, settings):
    """`camunda:initiator="initiator"`: a host that passes the starter gets the variable set."""
    from engine import bundles

    folder = DATA / LOAN
    source = sources.read_bundle(folder / "processes" / LOAN, folder / "forms")
    parsed = validation.validate(source, bundles.context(session, settings))
    workflow = spiff.new_workflow(parsed.specs, LOAN, 1000, initiator="alice")
    workflow.do_engine_steps()
    (task,) = [t for t in workflow.get_tasks() if t.task_spec.name == "Task_apply"]
    assert task.data["initiator"] == "alice"
    assert task.internal_data["assignment"]["assignee"] == "alice"


def test_a_started_camunda_loan_gives_its_first_task_to_the_person_who_started_it(
    session_factory, settings
):
    """`${initiator}` as assignee: the starter's inbox holds the task, nobody else's does."""
    deploy(session_factory, settings, LOAN)
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, LOAN, {}, APPLICANT).id
    (task,) = human_tasks(session_factory, instance_id)
    assert (task.element_id, task.assignee, task.group_key) == ("Task_apply", "alice", None)
    assert engine_data(session_factory, settings, instance_id)["initiator"] == "alice"

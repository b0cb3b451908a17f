"""Plain BPMN (bpmn.io and other modelers' exports) runs, or is told precisely what stops it.

A plain diagram names groups by its lanes, forms by convention (`forms/<bundle>/<task id>-
schema.json`) and operators by a service task's `implementation`. Conditions may be Python,
JUEL (`${...}`) or FEEL (by their `language`); other expression languages, and shapes the
engine does not run, are named with file, line and element.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import bundles, clock, service_calls, sources, timers, validation
from engine.errors import Problem
from tests.factories import (
    APPLICANT,
    REVIEWER,
    complete,
    deploy_folder,
    deploy_scenario,
    engine_data,
    event_data,
    human_tasks,
    instance,
    register_operators,
    start,
    task_states,
)

LOAN = "plain_loan"


@pytest.fixture
def plain_loan(session_factory, settings, monkeypatch):
    """The bpmn.io loan deployed, with its operator and its lane's English group name."""
    switch = register_operators(monkeypatch)
    switch["down"] = False
    with session_factory.begin() as session:
        return deploy_scenario(session, settings, LOAN)


def test_a_bpmn_io_diagram_runs_with_lanes_conventions_and_juel(
    plain_loan, session_factory, settings
):
    """Lane `Credit reviewer` (the group's English name), `implementation` operator, a JUEL and
    a FEEL condition, an ISO duration written bare; the data store is only a warning."""
    assert [(w.element_id, w.severity) for w in plain_loan.warnings] == [
        ("DataStoreReference_bureau", "warning"),
        ("Task_acknowledge", "warning"),
    ]
    instance_id = start(session_factory, settings, LOAN)
    complete(session_factory, settings, APPLICANT, "Task_apply", {"amount": 80000})
    assert service_calls.run_due(session_factory, settings) == 1
    assert engine_data(session_factory, settings, instance_id)["spiff__Task_score_result"] == {
        "value": 7
    }
    review = human_tasks(session_factory, instance_id)[-1]
    assert (review.element_id, review.group_key) == ("Task_review", "credit_reviewer")
    assert review.due_at is not None  # the bare `PT1H` boundary timer is the review's SLA
    complete(session_factory, settings, REVIEWER, "Task_review", {"decision": "approve"})
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_approved"}]


def test_a_task_without_a_form_file_is_marked_done_with_no_data(
    plain_loan, session_factory, settings
):
    """The small path: the acknowledging reviewer submits nothing and the instance ends."""
    instance_id = start(session_factory, settings, LOAN)
    complete(session_factory, settings, APPLICANT, "Task_apply", {"amount": 5000})
    service_calls.run_due(session_factory, settings)
    complete(session_factory, settings, REVIEWER, "Task_acknowledge", {})
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_approved_small"}]


def test_the_bare_iso_timer_escalates_an_hour_later(plain_loan, session_factory, settings):
    """`PT1H` as bpmn.io writes it (no quotes) fires after an hour and ends the review."""
    instance_id = start(session_factory, settings, LOAN)
    complete(session_factory, settings, APPLICANT, "Task_apply", {"amount": 80000})
    service_calls.run_due(session_factory, settings)
    clock.travel(timedelta(minutes=61))
    assert timers.advance_due(session_factory, settings) == 1
    assert task_states(session_factory, instance_id)[-1] == ("Task_review", "cancelled")
    assert event_data(session_factory, instance_id, "completed") == [{"end": "End_escalated"}]


# ---- long chains ------------------------------------------------------------------------------


def chain_diagram(steps: int) -> str:
    """Start → a user task → an exclusive gateway → `steps` script tasks in a row → end."""
    parts = [
        '<bpmn:startEvent id="Start_1" />',
        '<bpmn:userTask id="Task_go" />',
        '<bpmn:sequenceFlow id="Flow_a" sourceRef="Start_1" targetRef="Task_go" />',
        '<bpmn:exclusiveGateway id="Gateway_1" default="Flow_0" />',
        '<bpmn:sequenceFlow id="Flow_b" sourceRef="Task_go" targetRef="Gateway_1" />',
        '<bpmn:endEvent id="End_never" />',
        '<bpmn:sequenceFlow id="Flow_c" sourceRef="Gateway_1" targetRef="End_never">'
        "<bpmn:conditionExpression>False</bpmn:conditionExpression></bpmn:sequenceFlow>",
    ]
    previous = "Gateway_1"
    for i in range(steps):
        parts.append(
            f'<bpmn:scriptTask id="Step_{i}"><bpmn:script>n = {i}</bpmn:script></bpmn:scriptTask>'
        )
        parts.append(
            f'<bpmn:sequenceFlow id="Flow_{i}" sourceRef="{previous}" targetRef="Step_{i}" />'
        )
        previous = f"Step_{i}"
    parts.append('<bpmn:endEvent id="End_1" />')
    parts.append(f'<bpmn:sequenceFlow id="Flow_end" sourceRef="{previous}" targetRef="End_1" />')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="x">\n'
        '<bpmn:process id="plain_chain" isExecutable="true">\n'
        '<bpmn:laneSet id="Lanes"><bpmn:lane id="Lane_1" name="applicant">'
        "<bpmn:flowNodeRef>Task_go</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
        + "\n".join(parts)
        + "\n</bpmn:process>\n</bpmn:definitions>\n"
    )


def test_a_chain_of_2000_steps_runs_to_its_end(tmp_path, session_factory, settings):
    """Parse, start and the run after the gateway all recurse per step in SpiffWorkflow; each
    runs on a deep stack, and the task search goes deeper than SpiffWorkflow's 1,000 levels."""
    folder = tmp_path / "processes" / "plain_chain"
    folder.mkdir(parents=True)
    (folder / "plain_chain.bpmn").write_text(chain_diagram(2000), encoding="utf-8")
    with session_factory.begin() as session:
        deploy_folder(session, settings, tmp_path)
    instance_id = start(session_factory, settings, "plain_chain")
    complete(session_factory, settings, APPLICANT, "Task_go", {})
    row = instance(session_factory, instance_id)
    assert (row.status, row.error_message) == ("completed", None)
    assert engine_data(session_factory, settings, instance_id)["n"] == 1999


# ---- what stops a valid diagram from running ---------------------------------------------------

PLAIN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="x"{lang}>\n'
    '<bpmn:process id="plain_check" isExecutable="true">\n'
    '<bpmn:startEvent id="Start_1" />\n'
    '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Gateway_1" />\n'
    "{body}\n"
    '<bpmn:endEvent id="End_1" />\n<bpmn:endEvent id="End_2" />\n'
    "</bpmn:process>\n</bpmn:definitions>\n"
)
GATEWAY = (
    '<bpmn:{kind} id="Gateway_1" name="Which way?" default="Flow_3" />\n'
    '<bpmn:sequenceFlow id="Flow_2" sourceRef="Gateway_1" targetRef="End_1">'
    "<bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
    '<bpmn:sequenceFlow id="Flow_3" sourceRef="Gateway_1" targetRef="End_2" />'
)


@pytest.fixture
def check(tmp_path, session, settings):
    ctx = bundles.context(session, settings)

    def run(text: str) -> list[Problem]:
        folder = tmp_path / "processes" / "plain_check"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plain_check.bpmn").write_text(text, encoding="utf-8")
        return validation.validate(sources.read_bundle(folder, tmp_path / "forms"), ctx).problems

    return run


FILE = "processes/plain_check/plain_check.bpmn"
STOPS = [
    pytest.param(
        ' expressionLanguage="http://www.w3.org/1999/XPath"',
        GATEWAY.format(kind="exclusiveGateway", condition="bpmn:getDataObject('ok')"),
        Problem(
            FILE,
            7,
            "the condition of `Flow_2` is written in XPath (`bpmn:getDataObject('ok')`), which "
            "the engine does not read; write it as a Python-style expression such as "
            "`amount > 1000`",
            "Flow_2",
        ),
        id="xpath-condition",
    ),
    pytest.param(
        ' expressionLanguage="https://www.omg.org/spec/DMN/20191111/FEEL/"',
        GATEWAY.format(kind="exclusiveGateway", condition="Vacation Approval = &quot;ok&quot;"),
        Problem(
            FILE,
            7,
            'the condition of `Flow_2` is FEEL the engine cannot read (`Vacation Approval = "ok"`)'
            ": use variables without spaces, literals, comparisons, and/or, not(...)",
            "Flow_2",
        ),
        id="feel-name-with-spaces",
    ),
    pytest.param(
        "",
        GATEWAY.format(kind="complexGateway", condition="True"),
        Problem(
            FILE,
            6,
            "`Gateway_1` is a complexGateway, which the engine does not support",
            "Gateway_1",
        ),
        id="complex-gateway",
    ),
]


@pytest.mark.parametrize(("lang", "body", "problem"), STOPS)
def test_the_element_that_stops_a_valid_diagram_is_named(check, lang, body, problem):
    """Other expression languages and unsupported elements: file, line, element, what to do."""
    assert check(PLAIN.format(lang=lang, body=body)) == [problem]


def test_a_feel_condition_is_translated_and_a_process_input_link_ignored(check):
    """A FEEL condition compiles; a data association to a process input is only a warning."""
    body = (
        GATEWAY.format(kind="exclusiveGateway", condition="amount &gt; 1000 and not(vip)")
        .replace("<bpmn:conditionExpression>", '<bpmn:conditionExpression language="FEEL">')
        .replace(
            '<bpmn:sequenceFlow id="Flow_3"',
            '<bpmn:dataObject id="Never_referenced" />\n<bpmn:sequenceFlow id="Flow_3"',
        )
    )
    body = body.replace(
        '<bpmn:exclusiveGateway id="Gateway_1" name="Which way?" default="Flow_3" />',
        '<bpmn:exclusiveGateway id="Gateway_1" name="Which way?" default="Flow_3">'
        '<bpmn:dataInputAssociation id="Link_1"><bpmn:sourceRef>Process_input</bpmn:sourceRef>'
        "</bpmn:dataInputAssociation></bpmn:exclusiveGateway>",
    )
    assert check(PLAIN.format(lang="", body=body)) == [
        Problem(
            FILE,
            6,
            "the data association of `Gateway_1` (Which way?) with `Process_input` is ignored: "
            "only data objects carry data here",
            "Gateway_1",
            severity="warning",
        )
    ]

"""What of a Camunda 7 diagram cannot run here is refused at deploy, each with file, line, element
id and name, and words that say what to do instead; what has no meaning here is a warning.

Each case is one element drawn as Camunda Modeler writes it, in a one-task process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import bundles, sources, validation
from engine.errors import Problem

KEY = "camunda_check"
LEVELS = (
    Path(__file__).resolve().parents[2] / "processes" / "sample_approval" / "approval_levels.dmn"
)
FILE = f"processes/{KEY}/{KEY}.bpmn"
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="x">\n'
)


def diagram(task: str, process_attrs: str = "") -> str:
    """A process: start → `task` (id Task_x) → end."""
    return (
        HEAD + f'<bpmn:process id="{KEY}" isExecutable="true"{process_attrs}>\n'
        '<bpmn:startEvent id="Start_1" />\n'
        '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Task_x" />\n'
        f"{task}\n"
        '<bpmn:sequenceFlow id="Flow_2" sourceRef="Task_x" targetRef="End_1" />\n'
        '<bpmn:endEvent id="End_1" />\n'
        "</bpmn:process>\n</bpmn:definitions>\n"
    )


@pytest.fixture
def check(tmp_path, session, settings):
    """Problems of a bundle whose diagram is `text`, with `forms` and other `files`."""
    ctx = bundles.context(session, settings)

    def run(text: str, forms: dict[str, str] | None = None, files=None) -> list[Problem]:
        folder = tmp_path / "processes" / KEY
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{KEY}.bpmn").write_text(text, encoding="utf-8")
        for name, content in (files or {}).items():
            (folder / name).write_text(content, encoding="utf-8")
        for name, content in (forms or {}).items():
            (tmp_path / "forms" / KEY).mkdir(parents=True, exist_ok=True)
            (tmp_path / "forms" / KEY / name).write_text(content, encoding="utf-8")
        return validation.validate(sources.read_bundle(folder, tmp_path / "forms"), ctx).problems

    return run


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


JAVA = "which runs Java inside Camunda; this engine runs no Java"
EXTERNAL = "; make it an external task (Implementation: External) whose topic is an operator"
REFUSED = [
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Score" camunda:class="org.bank.Score" />',
        f"`Task_x` (Score) is in the Camunda dialect but uses `camunda:class`, {JAVA}{EXTERNAL}",
        id="class",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Score" camunda:delegateExpression="${score}" />',
        "`Task_x` (Score) is in the Camunda dialect but uses `camunda:delegateExpression`, "
        f"{JAVA}{EXTERNAL}",
        id="delegateExpression",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Score" camunda:expression="${bean.score()}" />',
        "`Task_x` (Score) is in the Camunda dialect but uses `camunda:expression`, which calls "
        f"Java objects inside Camunda; this engine runs no Java{EXTERNAL}",
        id="expression",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Call">\n<bpmn:extensionElements>'
        "<camunda:connector><camunda:connectorId>http-connector</camunda:connectorId>"
        "</camunda:connector></bpmn:extensionElements></bpmn:serviceTask>",
        "`Task_x` (Call) is in the Camunda dialect but uses `camunda:connector`, which calls HTTP "
        f"or SOAP through Camunda's connectors{EXTERNAL}",
        id="connector",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer">\n'
        '<bpmn:extensionElements><camunda:taskListener class="org.bank.Notify" event="create" />'
        "</bpmn:extensionElements></bpmn:userTask>",
        "`Task_x` (Review) is in the Camunda dialect but uses `camunda:taskListener`, which runs "
        "code when the task changes; this engine runs no listeners",
        id="listener",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer">\n'
        "<bpmn:extensionElements><camunda:inputOutput>"
        '<camunda:inputParameter name="x"><camunda:script scriptFormat="groovy">1</camunda:script>'
        "</camunda:inputParameter></camunda:inputOutput></bpmn:extensionElements></bpmn:userTask>",
        "`Task_x` (Review) is in the Camunda dialect but uses `camunda:script`, which runs a "
        "script in a language this engine does not run",
        id="script-parameter",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer" '
        'camunda:formRef="review" />',
        "`Task_x` (Review) is in the Camunda dialect but uses `camunda:formRef`, which names a "
        "Camunda Form (.form); forms here are JSON Schema",
        id="formRef",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer" '
        'camunda:colour="red" />',
        "`Task_x` (Review) uses `camunda:colour`, which this engine does not support; remove it",
        id="unknown-setting",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Score" camunda:type="soap" />',
        f"`Task_x` (Score) has the implementation type `soap`{EXTERNAL}",
        id="type-not-external",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Score" camunda:type="external" />',
        "external task `Task_x` (Score) needs a topic: the name of an operator",
        id="no-topic",
    ),
    pytest.param(
        '<bpmn:scriptTask id="Task_x" name="Sum" scriptFormat="groovy">'
        "<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>",
        "script task `Task_x` (Sum) is written in groovy; scripts here are Python (the engine's "
        "safe subset): rewrite it, or make it a service task",
        id="groovy",
    ),
    pytest.param(
        '<bpmn:scriptTask id="Task_x" name="Sum" scriptFormat="python" camunda:resultVariable="s">'
        "<bpmn:script>1 + 1</bpmn:script></bpmn:scriptTask>",
        "`Task_x` (Sum) stores its result with `camunda:resultVariable`, which only business rule "
        "tasks do here; assign the variable in the script instead",
        id="script-result-variable",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" '
        "camunda:assignee=\"${execution.getVariable('boss')}\" />",
        "the assignee of `Task_x` (Review) cannot be used here: `${execution.getVariable('boss')}`"
        ": `execution` is Camunda's Java object, which does not exist here; use process "
        "variables only",
        id="assignee-java",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer" '
        'camunda:formKey="embedded:app:forms/review.html" />',
        "user task `Task_x` (Review): the form key `embedded:app:forms/review.html` names a .html "
        "form, which cannot be shown here; save the form as a JSON Schema in forms/<bundle>/ and "
        "give its name as the form key (`review` for review-schema.json)",
        id="html-form",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="accountants" />',
        "user task `Task_x` (Review) has the candidate group `accountants`, which is no group",
        id="unknown-group",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateUsers="rui, rong" />',
        "user task `Task_x` (Review) has several candidate users (rui, rong) and no candidate "
        "group; give it a candidate group, or one candidate user",
        id="several-users",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateUsers="rui" '
        'camunda:dueDate="tomorrow" />',
        "`Task_x` (Review): the due date `tomorrow` is not an ISO 8601 date, date and time, or "
        "duration",
        id="due-date-not-iso",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" />',
        "user task `Task_x` (Review) is in no lane: put it in a lane named after the group that "
        "does it",
        id="plain-user-task-nobody",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:priority="50" />',
        "user task `Task_x` (Review) has no assignee, candidate users or candidate groups and is "
        "in no lane: set its candidate groups in the modeler (a group's key or name)",
        id="camunda-user-task-nobody",
    ),
    pytest.param(
        '<bpmn:businessRuleTask id="Task_x" name="Route" camunda:decisionRef="${which}" '
        'camunda:resultVariable="r" />',
        "business rule task `Task_x` (Route) must name its decision, not compute it",
        id="computed-decision",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer">\n'
        "<bpmn:extensionElements><camunda:formData>"
        '<camunda:formField id="when" type="time" /></camunda:formData>'
        "</bpmn:extensionElements></bpmn:userTask>",
        "the form field `when` has the type `time`; use string, long, boolean, date or enum",
        id="form-field-type",
    ),
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer">\n'
        "<bpmn:extensionElements><camunda:formData>"
        '<camunda:formField id="iban" type="string"><camunda:validation>'
        '<camunda:constraint name="validator" config="org.bank.Iban" />'
        "</camunda:validation></camunda:formField></camunda:formData>"
        "</bpmn:extensionElements></bpmn:userTask>",
        "the form field `iban` has the constraint `validator`, which this engine cannot check",
        id="form-field-validator",
    ),
]


@pytest.mark.parametrize(("task", "message"), REFUSED)
def test_what_cannot_run_is_refused_with_what_to_do(check, task, message):
    """Java, connectors, listeners, other script languages, unknown settings and broken forms."""
    text = diagram(task)
    errors = [p for p in check(text) if p.severity == "error"]
    assert len(errors) == 1, errors
    (problem,) = errors
    assert (problem.file, problem.element_id) == (FILE, "Task_x")
    assert problem.line in (line_of(text, 'id="Task_x"'), line_of(text, 'id="Task_x"') + 1)
    assert problem.message.startswith(message), problem.message


WARNED = [
    pytest.param(
        '<bpmn:userTask id="Task_x" name="Review" camunda:candidateGroups="credit_reviewer, '
        'branch_manager" />',
        "user task `Task_x` (Review) has several candidate groups; only the first, "
        "`credit_reviewer`, receives the task",
        id="several-groups",
    ),
    pytest.param(
        '<bpmn:businessRuleTask id="Task_x" name="Route" camunda:decisionRef="approval_levels" />',
        "business rule task `Task_x` (Route) keeps no result: set a result variable, or the "
        "decision's outputs are lost",
        id="no-result-variable",
    ),
    pytest.param(
        '<bpmn:serviceTask id="Task_x" name="Check" camunda:type="external" '
        'camunda:topic="checks.required_fields">\n<bpmn:extensionElements>'
        "<camunda:failedJobRetryTimeCycle>R5/PT1M</camunda:failedJobRetryTimeCycle>"
        "</bpmn:extensionElements></bpmn:serviceTask>",
        "`Task_x` (Check): `camunda:failedJobRetryTimeCycle` is ignored; retries follow the "
        "engine's own schedule (5 attempts, doubling)",
        id="retry-cycle",
    ),
]


@pytest.mark.parametrize(("task", "message"), WARNED)
def test_what_changes_nothing_here_is_a_warning(check, task, message):
    """The bundle deploys; the analyst is told what is ignored."""
    problems = check(diagram(task), files={"levels.dmn": LEVELS.read_text(encoding="utf-8")})
    assert [p.severity for p in problems] == ["warning"], problems
    assert (problems[0].message, problems[0].element_id) == (message, "Task_x")


def test_a_juel_condition_outside_the_subset_is_refused_on_its_line(check):
    """The flow, its line and the offending text; not a Python syntax error at run time."""
    text = diagram(
        '<bpmn:exclusiveGateway id="Task_x" name="Large?" default="Flow_2" />\n'
        '<bpmn:sequenceFlow id="Flow_big" name="large" sourceRef="Task_x" targetRef="End_1">'
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
        "${loan.isLarge()}</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )
    assert check(text) == [
        Problem(
            FILE,
            line_of(text, "<bpmn:conditionExpression"),
            "the expression of `Flow_big` (large) cannot be used here: `${loan.isLarge()}`: "
            "calling methods (`.isLarge()`) is not supported; read a field instead, or compute "
            "the value in a script task first",
            "Flow_big",
        )
    ]


def test_a_quartz_cron_timer_is_refused_with_the_iso_spelling(check):
    """Camunda accepts cron cycles; the analyst is shown the ISO 8601 cycle to write instead."""
    text = diagram(
        '<bpmn:intermediateCatchEvent id="Task_x" name="Every 5 minutes">'
        "<bpmn:timerEventDefinition><bpmn:timeCycle>0 0/5 * * * ?</bpmn:timeCycle>"
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )
    assert check(text) == [
        Problem(
            FILE,
            line_of(text, "<bpmn:timeCycle"),
            "the timer of `Task_x` (Every 5 minutes) is a cron expression (`0 0/5 * * * ?`), "
            "which the engine does not read; write an ISO 8601 cycle such as `R/PT5M` (every "
            "five minutes) or `R3/PT1H` (three times, hourly)",
            "Task_x",
        )
    ]


def test_who_may_start_a_process_is_a_warning(check):
    """candidateStarterGroups has no counterpart here; the diagram still deploys."""
    text = diagram(
        '<bpmn:userTask id="Task_x" camunda:candidateGroups="credit_reviewer" />',
        ' camunda:candidateStarterGroups="sales"',
    )
    assert check(text) == [
        Problem(
            FILE,
            3,
            f"`{KEY}`: `camunda:candidateStarterGroups` is ignored; who may start a process is "
            "not checked here",
            KEY,
            severity="warning",
        )
    ]


def test_a_camunda_8_diagram_is_told_apart_from_camunda_7(check):
    """Zeebe settings mean nothing here: the first one is named with its line."""
    text = diagram(
        '<bpmn:serviceTask id="Task_x" name="Score"><bpmn:extensionElements>'
        '<zeebe:taskDefinition xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" type="score" />'
        "</bpmn:extensionElements></bpmn:serviceTask>"
    )
    assert check(text) == [
        Problem(
            FILE,
            line_of(text, "<bpmn:serviceTask"),
            f"this diagram is for Camunda 8 (`zeebe:taskDefinition` on line "
            f"{line_of(text, '<bpmn:serviceTask')}), whose settings this engine does not read; "
            "draw it for Camunda 7 (Camunda Modeler: Camunda Platform 7), in bpmn.io or in "
            "SpiffArena's modeler",
            "Task_x",
        )
    ]


def test_camunda_modelers_bookkeeping_alone_keeps_a_diagram_plain(check):
    """historyTimeToLive and versionTag are on every Camunda file; they make no dialect."""
    text = diagram('<bpmn:task id="Task_x" />', ' camunda:historyTimeToLive="180"')
    assert check(text) == []


def test_a_form_file_named_like_a_generated_form_is_refused(check):
    """The generated form would silently replace the file."""
    text = diagram(
        '<bpmn:userTask id="Task_x" camunda:candidateGroups="credit_reviewer">'
        '<bpmn:extensionElements><camunda:formData><camunda:formField id="ok" type="boolean" />'
        "</camunda:formData></bpmn:extensionElements></bpmn:userTask>"
    )
    problems = check(text, forms={"Task_x-generated-schema.json": '{"type": "object"}'})
    assert problems == [
        Problem(
            f"forms/{KEY}/Task_x-generated-schema.json",
            None,
            "this file has the name of a form the engine generates; rename it",
        )
    ]

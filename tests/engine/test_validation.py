"""Bundle validation: every rule reports the file, line, element id and words an analyst needs.

Each rule is shown by a scenario bundle in tests/data/<scenario>/ or by a copy of the sample
bundle with one edit. Problems are compared whole, so a changed message or a lost line fails.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest
from lxml import etree

from engine import bundles, sources, spec_parsing, validation
from engine.errors import Problem

DATA = Path(__file__).resolve().parent.parent / "data"
REPO = DATA.parent.parent
KEY = "sample_approval"
BPMN = f"processes/{KEY}/{KEY}.bpmn"
DMN = f"processes/{KEY}/approval_levels.dmn"
APPLY_FORM = f"forms/{KEY}/apply-schema.json"
RAW_SPIFF = ("Error(", "Exception", "Traceback", "ValidationException", "not supported for tasks")


@pytest.fixture
def ctx(session, settings) -> validation.Context:
    return bundles.context(session, settings)


def _check(source: sources.BundleSource, ctx: validation.Context) -> list[Problem]:
    problems = validation.validate(source, ctx).problems
    for problem in problems:  # whatever the rule, SpiffWorkflow's own words never leak
        assert not any(raw in problem.message for raw in RAW_SPIFF), problem
    return problems


def scenario(name: str, ctx: validation.Context) -> list[Problem]:
    folder = DATA / name
    return _check(sources.read_bundle(folder / "processes" / name, folder / "forms"), ctx)


def sample_copy(tmp_path: Path, *edits: tuple[str, str, str], key: str = KEY) -> Path:
    """The sample bundle copied under `tmp_path` as bundle `key`, each (path, old, new) applied."""
    shutil.copytree(REPO / "processes" / KEY, tmp_path / "processes" / key)
    shutil.copytree(REPO / "forms" / KEY, tmp_path / "forms" / key)
    for path, old, new in edits:
        file = tmp_path / path.replace(KEY, key, 1)
        text = file.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} should occur once in {path}"
        file.write_text(text.replace(old, new), encoding="utf-8")
    return tmp_path / "processes" / key


def sample_with(tmp_path: Path, ctx, *edits: tuple[str, str, str]) -> list[Problem]:
    folder = sample_copy(tmp_path, *edits)
    return _check(sources.read_bundle(folder, tmp_path / "forms"), ctx)


def test_the_sample_bundle_passes_with_no_problems(session, settings):
    """The shipped sample validates clean, with its main process and every lane resolved."""
    [result] = bundles.check(session, settings, settings.processes_dir / KEY)
    assert result.problems == []
    assert result.main_process_id == KEY
    assert {t.element_id: t.group_key for t in result.tasks.values()} == {
        "Task_apply": None,
        "Task_review": "credit_reviewer",
        "Task_manager": "branch_manager",
    }


# ---- XML and what is refused outright ---------------------------------------------------------


def test_duplicate_ids_name_both_lines(ctx):
    """Two elements with one id are reported with both lines, before SpiffWorkflow guesses."""
    assert scenario("bad_duplicate_ids", ctx) == [
        Problem(
            "processes/bad_duplicate_ids/bad_duplicate_ids.bpmn",
            12,
            "two elements share the id `Task_1` (lines 6 and 12)",
            "Task_1",
        )
    ]


def test_a_flow_to_a_missing_element_names_the_flow_and_the_target(ctx):
    """Not SpiffWorkflow's "found two items, perhaps a form has the same ID?"."""
    assert scenario("bad_flow_target", ctx) == [
        Problem(
            "processes/bad_flow_target/bad_flow_target.bpmn",
            7,
            "sequence flow Flow_7 goes to `Task_9`, which does not exist",
            "Flow_7",
        )
    ]


def test_an_id_the_engine_uses_itself_is_refused(ctx):
    """An end event called `End` would replace the engine's own end task."""
    assert scenario("bad_reserved_id", ctx) == [
        Problem(
            "processes/bad_reserved_id/bad_reserved_id.bpmn",
            6,
            "the id `End` is reserved by the engine; rename the element",
            "End",
        )
    ]


def test_an_html_page_saved_as_a_diagram_is_called_html(ctx):
    """Not "a diagram with no processes", nor a DOCTYPE refusal."""
    assert scenario("bad_html", ctx) == [
        Problem("processes/bad_html/bad_html.bpmn", 1, "this looks like HTML, not BPMN")
    ]


def test_a_non_executable_process_is_reported_not_dropped(ctx):
    """SpiffWorkflow parses it silently to nothing; the analyst is told which attribute to set."""
    assert scenario("bad_not_executable", ctx) == [
        Problem(
            "processes/bad_not_executable/bad_not_executable.bpmn",
            3,
            'no executable process: set isExecutable="true" on the process to run',
            "bad_not_executable",
        )
    ]


def test_billion_laughs_is_refused_at_its_doctype_line(ctx):
    """The entity bomb is refused before any parser sees it."""
    assert scenario("bad_billion_laughs", ctx) == [
        Problem(
            "processes/bad_billion_laughs/bad_billion_laughs.bpmn",
            2,
            "DOCTYPE declarations are not allowed (they can read files or blow up memory); "
            "remove it",
        )
    ]


def test_an_external_entity_is_refused_and_nothing_is_read(ctx):
    """`file:///etc/passwd` is refused at its line; no line of that file appears anywhere."""
    problems = scenario("bad_external_entity", ctx)
    assert problems == [
        Problem(
            "processes/bad_external_entity/bad_external_entity.bpmn",
            2,
            "DOCTYPE declarations are not allowed (they can read files or blow up memory); "
            "remove it",
        )
    ]
    passwd = Path("/etc/passwd").read_text().splitlines() if Path("/etc/passwd").exists() else []
    shown = "\n".join(str(p) for p in problems)
    assert "root:" not in shown
    assert not any(line and line in shown for line in passwd)


def test_an_oversized_file_is_refused_with_both_sizes(tmp_path, session, settings):
    """A diagram over APPROVAL_MAX_FILE_BYTES is refused before it is parsed."""
    small = bundles.context(session, dataclasses.replace(settings, max_file_bytes=5_000))
    size = (REPO / BPMN).stat().st_size
    assert sample_with(tmp_path, small) == [
        Problem(BPMN, None, f"the file is {size:,} bytes; the limit is 5,000")
    ]


def test_a_broken_tag_names_where_it_opened_and_closed(tmp_path, ctx):
    """libxml2's message is reworded and carries the line of the fault."""
    edit = (BPMN, "<bpmn:incoming>Flow_start_apply</bpmn:incoming>", "<bpmn:incoming>")
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(BPMN, 44, "the tag <incoming> opened on line 42 is closed by </userTask>")
    ]


# ---- the shape of the process -----------------------------------------------------------------


def test_a_gateway_flow_without_a_condition_is_refused(ctx):
    """Only the default flow of a deciding gateway may go without a condition."""
    assert scenario("bad_gateway_condition", ctx) == [
        Problem(
            "processes/bad_gateway_condition/bad_gateway_condition.bpmn",
            10,
            "sequence flow Flow_small leaves gateway `Gateway_amount` (Large amount?) with no "
            "condition; give it one, or make it the gateway's default flow",
            "Flow_small",
        )
    ]


def test_a_script_task_without_a_script_is_refused_at_deploy(ctx):
    """Not at run time, when an applicant is waiting."""
    assert scenario("bad_script_missing", ctx) == [
        Problem(
            "processes/bad_script_missing/bad_script_missing.bpmn",
            6,
            "script task `Script_fee` (Work out the fee) has no script",
            "Script_fee",
        )
    ]


def test_a_condition_that_does_not_compile_is_located(ctx):
    """The condition's own line and its flow's id, with the reason."""
    assert scenario("bad_condition_syntax", ctx) == [
        Problem(
            "processes/bad_condition_syntax/bad_condition_syntax.bpmn",
            8,
            "the condition of `Flow_large` (large): syntax error: invalid syntax",
            "Flow_large",
        )
    ]


def test_a_script_error_names_the_line_inside_the_script(tmp_path, ctx):
    """Line 2 of a script on line 90 is reported as line 91."""
    old = "reminder = {'task': 'Task_review', 'overdue_days': 2}"
    edit = (BPMN, old, "reminder = 1\nimport os")
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            91,
            "the script of `Script_remind` (记录提醒 Note the reminder): `import` is not allowed",
            "Script_remind",
        )
    ]


def test_a_process_calling_itself_is_refused(ctx):
    """A self-recursive call activity would run forever."""
    assert scenario("bad_self_call", ctx) == [
        Problem(
            "processes/bad_self_call/bad_self_call.bpmn",
            6,
            "call activity `Call_again` (Review once more) calls `bad_self_call`, its own "
            "process: a process may not call itself",
            "Call_again",
        )
    ]


def test_a_call_to_a_missing_process_is_refused(ctx):
    """The call activity is named, with the processes the bundle does have."""
    assert scenario("bad_missing_call", ctx) == [
        Problem(
            "processes/bad_missing_call/bad_missing_call.bpmn",
            6,
            "call activity `Call_credit_check` (Credit check) calls `credit_check`, which is not "
            "a process of this bundle (processes: `bad_missing_call`)",
            "Call_credit_check",
        )
    ]


def test_a_boundary_event_on_a_missing_task_is_refused(tmp_path, ctx):
    """SpiffWorkflow would drop the timer silently."""
    edit = (BPMN, 'attachedToRef="Task_review"', 'attachedToRef="Task_reviw"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            81,
            "boundary event `Timer_review_sla` (2 天未处理 2 days) is attached to `Task_reviw`, "
            "which does not exist",
            "Timer_review_sla",
        )
    ]


def test_a_task_with_two_outgoing_flows_is_told_to_add_a_gateway(tmp_path, ctx):
    """SpiffWorkflow's half sentence ("not supported for tasks of type") is reworded and located."""
    extra = (
        '<bpmn:sequenceFlow id="Flow_extra" sourceRef="Task_apply" targetRef="End_incomplete" />'
    )
    edit = (BPMN, "  </bpmn:process>", f"    {extra}\n  </bpmn:process>")
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            35,
            "`Task_apply` has several outgoing sequence flows; only a gateway may split the "
            "path: add one after it",
            "Task_apply",
        )
    ]


def test_an_extension_setting_with_a_task_id_is_refused(tmp_path, ctx):
    """A parameter whose id is a task's id would hide that task from the parser."""
    edit = (
        BPMN,
        '<spiffworkflow:parameter id="record"',
        '<spiffworkflow:parameter id="Task_review"',
    )
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            49,
            "the <parameter> setting uses the id `Task_review`, which is the id of the element "
            "on line 72; rename one of them",
            "Task_review",
        )
    ]


def test_two_service_tasks_may_call_the_same_operator(tmp_path, ctx):
    """Extension elements (operator and parameter ids) may repeat; only model ids must not."""
    text = (REPO / BPMN).read_text(encoding="utf-8")
    start = text.index("    <bpmn:serviceTask")
    task = text[start : text.index("</bpmn:serviceTask>") + len("</bpmn:serviceTask>\n")]
    copy = task.replace("Task_precheck", "Task_precheck_again").replace("Flow_", "Unused_")
    assert sample_with(tmp_path, ctx, (BPMN, task, task + copy)) == []


def test_a_non_executable_helper_process_is_a_warning_not_an_error(tmp_path, ctx):
    """A documentation-only pool deploys, with a note that it never runs."""
    edit = (
        BPMN,
        "  <bpmndi:BPMNDiagram",
        '  <bpmn:process id="Notes" isExecutable="false" />\n  <bpmndi:BPMNDiagram',
    )
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            157,
            'process `Notes` is not executable, so it will never run; set isExecutable="true" '
            "if it should",
            "Notes",
            severity="warning",
        )
    ]


def test_a_task_id_used_in_two_files_of_a_bundle_is_refused(tmp_path, ctx):
    """Task meta is keyed by element id, so tasks need ids unique across the bundle."""
    folder = sample_copy(tmp_path)
    (folder / "helper.bpmn").write_text(
        (DATA / "bad_script_missing/processes/bad_script_missing/bad_script_missing.bpmn")
        .read_text()
        .replace('id="bad_script_missing"', 'id="helper"')
        .replace(
            '<bpmn:scriptTask id="Script_fee" name="Work out the fee" />',
            '<bpmn:task id="Task_review" />',
        )
        .replace("Script_fee", "Task_review"),
        encoding="utf-8",
    )
    problems = _check(sources.read_bundle(folder, tmp_path / "forms"), ctx)
    assert problems == [
        Problem(
            BPMN,
            72,
            "the id `Task_review` is also used in processes/sample_approval/helper.bpmn (line 6); "
            "processes, tasks and decisions need ids unique across the bundle",
            "Task_review",
        )
    ]


def test_an_element_the_engine_does_not_support_is_named_with_its_kind(ctx):
    """SpiffWorkflow's "no support implemented for this task type" says which kind."""
    assert scenario("bad_unsupported_element", ctx) == [
        Problem(
            "processes/bad_unsupported_element/bad_unsupported_element.bpmn",
            6,
            "`Gateway_rules` is a complexGateway, which the engine does not support",
            "Gateway_rules",
        )
    ]


def test_a_message_event_naming_an_undefined_message_is_refused(ctx):
    """Not SpiffWorkflow's internal TypeError."""
    assert scenario("bad_message_ref", ctx) == [
        Problem(
            "processes/bad_message_ref/bad_message_ref.bpmn",
            8,
            "event `Event_wait` (Documents arrive) refers to the message `Message_docs`, which is "
            "not defined in this file; pick a message in the modeler",
            "Event_wait",
        )
    ]


def test_a_timer_the_engine_cannot_read_is_refused_at_deploy(tmp_path, ctx):
    """`P2X` would fail when the timer starts, days after the deploy."""
    edit = (BPMN, '"P2D"', '"P2X"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            84,
            "the timer of `Timer_review_sla` (2 天未处理 2 days): `P2X` is not a duration such as "
            "'P2D' or 'PT48H'",
            "Timer_review_sla",
        )
    ]


# ---- names the bundle refers to: operators, forms, groups, decisions --------------------------


def test_an_unknown_service_operator_is_refused_with_the_known_ones(ctx):
    """Only registered operators may be called."""
    (problem,) = scenario("bad_service_operator", ctx)
    assert (problem.file, problem.line, problem.element_id) == (
        "processes/bad_service_operator/bad_service_operator.bpmn",
        6,
        "Task_bureau",
    )
    assert problem.message.startswith(
        "service task `Task_bureau` (Ask the credit bureau) calls the operator "
        "`credit_bureau.lookup`, which does not exist"
    )


def test_a_camunda_external_task_topic_must_name_an_operator(ctx):
    """A Camunda topic calls the operator of that name; an unknown one is named with the known."""
    (problem,) = scenario("bad_camunda_topic", ctx)
    assert (problem.file, problem.line, problem.element_id) == (
        "processes/bad_camunda_topic/bad_camunda_topic.bpmn",
        6,
        "Task_score",
    )
    assert problem.message.startswith(
        "external task `Task_score` (Score) has the topic `scoring`, which is no operator (known: "
    )


def test_a_mistyped_operator_gets_a_suggestion(tmp_path, ctx):
    """A near miss names the operator that was probably meant."""
    edit = (BPMN, 'id="checks.required_fields"', 'id="checks.required_field"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            45,
            "service task `Task_precheck` (自动预审 Automatic pre-check) calls the operator "
            "`checks.required_field`, which does not exist (did you mean "
            "`checks.required_fields`?)",
            "Task_precheck",
        )
    ]


def test_a_form_that_does_not_exist_is_refused(tmp_path, ctx):
    """The user task and the folders searched are named."""
    edit = (BPMN, 'value="apply-schema.json"', 'value="aply-schema.json"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            35,
            "user task `Task_apply` (填写申请 Fill in the application) uses the form "
            "`aply-schema.json`, which is not in forms/sample_approval/ or forms/_shared/",
            "Task_apply",
        )
    ]


def test_a_form_that_is_not_json_is_refused_with_its_line(tmp_path, ctx):
    """A missing comma is located in the form file."""
    edit = (APPLY_FORM, '"type": "object",', '"type": "object"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(APPLY_FORM, 5, "the form is not valid JSON: Expecting ',' delimiter")
    ]


def test_a_form_that_is_not_a_valid_json_schema_is_located(tmp_path, ctx):
    """The bad keyword's path and line in the form file."""
    edit = (APPLY_FORM, '"minimum": 1000', '"minimum": "1,000"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            APPLY_FORM,
            9,
            "the form is not a valid JSON Schema at properties/amount/minimum: '1,000' is not of "
            "type 'number'",
        )
    ]


def test_a_lane_that_maps_to_no_group_is_reported_once_on_the_lane(tmp_path, ctx):
    """The lane, not each of its tasks, with the group probably meant."""
    edit = (BPMN, 'name="credit_reviewer"', 'name="credit_reviewers"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            16,
            "the lane `credit_reviewers` maps to no group (did you mean `credit_reviewer`?); "
            "name the lane after an existing group, or `applicant` for the applicant's own tasks",
            "Lane_reviewer",
        )
    ]


def test_a_lane_may_use_the_groups_chinese_name(tmp_path, ctx):
    """信贷审核员 is the credit_reviewer group."""
    edit = (BPMN, 'name="credit_reviewer"', 'name="信贷审核员"')
    folder = sample_copy(tmp_path, edit)
    result = validation.validate(sources.read_bundle(folder, tmp_path / "forms"), ctx)
    assert result.problems == []
    assert result.tasks["Task_review"].group_key == "credit_reviewer"


def test_a_decision_the_bundle_lacks_is_named(tmp_path, ctx):
    """Not SpiffWorkflow's "No DMN Diagram available with id"."""
    edit = (
        BPMN,
        ">approval_levels</spiffworkflow:calledDecisionId>",
        ">levels</spiffworkflow:calledDecisionId>",
    )
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            BPMN,
            57,
            "business rule task `Task_route` (审批层级 Approval levels) uses the decision "
            "`levels`, which is in none of the bundle's .dmn files (decisions: `approval_levels`)",
            "Task_route",
        )
    ]


# ---- DMN --------------------------------------------------------------------------------------


def test_a_dmn_file_that_is_not_well_formed_is_located(tmp_path, ctx):
    """The DMN file and line, in plain words."""
    edit = (
        DMN,
        '</inputEntry>\n        <outputEntry id="Output_small">',
        '\n        <outputEntry id="Output_small">',
    )
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(DMN, 19, "the tag <inputEntry> opened on line 13 is closed by </rule>")
    ]


def test_each_decision_of_a_dmn_file_with_several_is_checked_not_a_crash(tmp_path, ctx):
    """SpiffWorkflow's DMN parser failed with AttributeError on several decisions; each is read."""
    second = '  <decision id="other" name="Other"><decisionTable id="T2" /></decision>\n'
    edit = (DMN, "  <dmndi:DMNDI>", second + "  <dmndi:DMNDI>")
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(DMN, 31, "decision table `T2` has no output column", "T2")
    ]


def test_a_dmn_file_with_no_decision_is_refused_not_a_crash(tmp_path, ctx):
    """SpiffWorkflow's DMN parser fails with IndexError on an empty file."""
    text = (REPO / DMN).read_text(encoding="utf-8")
    decision = text[text.index("  <decision ") : text.index("  <dmndi:DMNDI>")]
    problems = sample_with(tmp_path, ctx, (DMN, decision, ""))
    assert problems == [Problem(DMN, 2, "the DMN file has no decision")]


def test_a_cell_that_is_neither_feel_nor_python_is_refused_with_both_spellings(tmp_path, ctx):
    """A broken range names the FEEL tests and the Python cells the engine reads."""
    edit = (DMN, "<text>&lt;= 50000</text>", "<text>[1000..50000</text>")
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            DMN,
            13,
            "the DMN cell `[1000..50000` is not a valid expression (a cell is a FEEL test "
            '(`< 1000`, `[1..5]`, `"a","b"`, `not("x")`, `-`) or a Python expression '
            "(`? >= 1 and ? <= 5`, `'gold'`))",
            "Entry_small",
        )
    ]


def test_an_unsupported_hit_policy_is_refused(tmp_path, ctx):
    """PRIORITY needs output value priorities, which are not read."""
    edit = (DMN, 'hitPolicy="UNIQUE"', 'hitPolicy="PRIORITY"')
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            DMN,
            4,
            "hit policy PRIORITY is not supported (use UNIQUE, FIRST, ANY, COLLECT or RULE ORDER)",
            "DecisionTable_levels",
        )
    ]


def test_a_rule_with_more_cells_than_columns_is_refused_not_a_crash(tmp_path, ctx):
    """SpiffWorkflow's DMN parser fails with IndexError on an extra cell."""
    edit = (
        DMN,
        '<inputEntry id="Entry_small">',
        '<inputEntry id="Extra"><text>1</text></inputEntry><inputEntry id="Entry_small">',
    )
    assert sample_with(tmp_path, ctx, edit) == [
        Problem(
            DMN,
            11,
            "rule `Rule_small` has 2 input and 1 output cells, but the table has 1 input and 1 "
            "output columns",
            "Rule_small",
        )
    ]


# Shapes found by mutating the sample at random: each made SpiffWorkflow fail with a bare
# ValueError, KeyError, IndexError or AttributeError (a crash, or its repr shown to the analyst).
FUZZ_FINDINGS = [
    pytest.param(
        (BPMN, '<dc:Bounds x="320" y="140"', '<dc:Bounds x="320px" y="140"'),
        Problem(
            BPMN,
            175,
            'the drawing of `Task_apply` has a position x="320px" that is not a number; open '
            "the diagram in the modeler and save it again",
            "Task_apply",
        ),
        id="layout-not-a-number",
    ),
    pytest.param(
        (
            BPMN,
            '<spiffworkflow:property name="formJsonSchemaFilename" value="review',
            '<spiffworkflow:property value="review',
        ),
        Problem(
            BPMN,
            75,
            "the <spiffworkflow:property> setting of `Task_review` (人工审核 Credit review) has "
            "no name",
            "Task_review",
        ),
        id="setting-without-name",
    ),
    pytest.param(
        (DMN, "<text>&lt;= 50000</text>", ""),
        Problem(
            DMN, 13, "the cell `Entry_small` has no <text>; type `-` for any value", "Entry_small"
        ),
        id="cell-without-text",
    ),
    pytest.param(
        (APPLY_FORM, '"type": "object",', '"type": "object", "x": ' + "[" * 80 + "]" * 80 + ","),
        Problem(APPLY_FORM, None, "the form nests more than 64 levels deep"),
        id="form-nested-too-deep",
    ),
]


@pytest.mark.parametrize(("edit", "problem"), FUZZ_FINDINGS)
def test_shapes_that_crashed_spiffworkflow_are_located_problems(tmp_path, ctx, edit, problem):
    """Validation never raises on untrusted input; each case is named in the analyst's words."""
    assert sample_with(tmp_path, ctx, edit) == [problem]


# ---- the whole bundle -------------------------------------------------------------------------


def test_every_problem_of_every_file_is_reported_in_one_pass(tmp_path, ctx):
    """An analyst fixes everything at once instead of one error per deploy."""
    problems = sample_with(
        tmp_path,
        ctx,
        (BPMN, 'targetRef="Task_precheck"', 'targetRef="Task_9"'),
        (DMN, 'hitPolicy="UNIQUE"', 'hitPolicy="PRIORITY"'),
        (APPLY_FORM, '"type": "object",', '"type": "object"'),
    )
    assert sorted((p.file, p.line) for p in problems) == [(APPLY_FORM, 5), (DMN, 4), (BPMN, 128)]


def _chain(n: int) -> str:
    steps = ['    <bpmn:startEvent id="Start_1" />']
    previous = "Start_1"
    for i in range(n):
        steps.append(f'    <bpmn:task id="Step_{i}" />')
        steps.append(
            f'    <bpmn:sequenceFlow id="Flow_{i}" sourceRef="{previous}" targetRef="Step_{i}" />'
        )
        previous = f"Step_{i}"
    steps.append('    <bpmn:endEvent id="End_1" />')
    steps.append(
        f'    <bpmn:sequenceFlow id="Flow_end" sourceRef="{previous}" targetRef="End_1" />'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" '
        'targetNamespace="x">\n  <bpmn:process id="long_chain" isExecutable="true">\n'
        + "\n".join(steps)
        + "\n  </bpmn:process>\n</bpmn:definitions>\n"
    )


def _chain_bundle(tmp_path: Path, n: int) -> sources.BundleSource:
    folder = tmp_path / "processes" / "long_chain"
    folder.mkdir(parents=True)
    (folder / "long_chain.bpmn").write_text(_chain(n), encoding="utf-8")
    return sources.read_bundle(folder, tmp_path / "forms")


def test_a_chain_of_800_tasks_validates(tmp_path, ctx):
    """Beyond Python's default recursion limit for the parse (~480 tasks), and still startable."""
    result = validation.validate(_chain_bundle(tmp_path, 800), ctx)
    assert result.problems == []
    assert len(result.specs["long_chain"].task_specs) == 805


def test_a_chain_of_3000_tasks_validates_and_can_start(tmp_path, ctx):
    """The parse and the trial start both run on a deep stack: no recursion-depth crash."""
    started = time.perf_counter()
    problems = _check(_chain_bundle(tmp_path, 3000), ctx)
    assert time.perf_counter() - started < 10
    assert problems == []


def test_spiffworkflows_parse_of_3000_chained_tasks_survives():
    """The deep-stack parse returns the specs where a plain parse hits the recursion limit."""
    root = etree.fromstring(_chain(3000).encode())
    specs, problems = spec_parsing.parse({"long_chain.bpmn": root}, {}, {})
    assert problems == []
    assert len(specs["long_chain"].task_specs) == 3005

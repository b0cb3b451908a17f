"""Checks on the parsed tasks of a bundle: lanes that name groups, forms that exist, operators.

Decision: a user task's candidate group is its lane, resolved to a group key at deploy time and
stored with the version; an unknown lane is reported once, on the lane, not on every task in it.
A lane called `applicant` (or 申请人, initiator) belongs to whoever started the instance. A
Camunda task's own candidate groups, users or assignee take the lane's place; written-out
groups are checked here, computed ones (`${approverGroups}`) when the task becomes ready.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.spiff.specs.mixins.service_task import ServiceTask as ServiceTaskMixin

from engine import dialects
from engine.errors import Problem
from engine.task_specs import ExternalTopicTask


@dataclass(frozen=True)
class TaskMeta:
    """A user task as the inbox needs it, resolved at deploy time."""

    element_id: str
    name: str
    lane: str | None
    group_key: str | None  # None: the applicant's own task
    form: str | None
    ui_form: str | None


@dataclass(frozen=True)
class Where:
    """What the task checks need to know about the bundle's files."""

    key: str
    lines: Mapping[str, tuple[str, int]]  # element id → file, line
    lanes: Mapping[str, tuple[str, int, str]]  # lane name → file, line, lane id
    dialects: Mapping[str, dialects.Dialect]  # BPMN file → its dialect
    forms: Mapping[str, Any]  # form path → parsed JSON


def label(task_spec) -> str:
    name = getattr(task_spec, "bpmn_name", None)
    return f"`{task_spec.name}` ({name})" if name else f"`{task_spec.name}`"


def check_tasks(
    specs: dict[str, Any], where: Where, group_keys: Mapping[str, str], operators: frozenset[str]
) -> tuple[dict[str, TaskMeta], list[Problem]]:
    """Every user task's lane and forms and every service task's operator; the user tasks' meta."""
    tasks: dict[str, TaskMeta] = {}
    problems: list[Problem] = []
    unknown_lanes: dict[str, tuple] = {}  # lane → where its first task is
    for spec in specs.values():
        for task_spec in spec.task_specs.values():
            file, line = where.lines.get(_element_id(task_spec), ("", None))
            if isinstance(task_spec, UserTaskMixin):
                meta, found = _user_task(task_spec, where, group_keys, (file, line))
                tasks[task_spec.name] = meta
                problems += found
                by_lane = not _dialect(task_spec, where).assignment_of(task_spec)
                if (
                    by_lane
                    and meta.lane
                    and meta.group_key is None
                    and not _is_applicant(meta.lane)
                ):
                    unknown_lanes.setdefault(meta.lane, (file, line, task_spec.name))
            elif isinstance(task_spec, ServiceTaskMixin):
                problems += _service_task(task_spec, where, operators, (file, line))
    lanes = [_unknown_lane(lane, at, where, group_keys) for lane, at in unknown_lanes.items()]
    return tasks, lanes + problems


def _element_id(task_spec) -> str:
    """The diagram element of a task spec (a multi-instance task's `X [child]` is element `X`)."""
    return getattr(task_spec, "bpmn_id", None) or task_spec.name


def _is_applicant(lane: str) -> bool:
    return lane.lower() in dialects.APPLICANT_ALIASES


def _dialect(task_spec, where: Where) -> dialects.Dialect:
    file = where.lines.get(_element_id(task_spec), ("", 0))[0]
    return where.dialects.get(file, dialects.PLAIN)


def _user_task(task_spec, where: Where, group_keys, at) -> tuple[TaskMeta, list[Problem]]:
    dialect = _dialect(task_spec, where)
    problems = []
    lane = dialect.lane_of(task_spec)
    group_key = None
    settings = dialect.assignment_of(task_spec)
    if settings:
        group_key, problems = _assignment(task_spec, settings, group_keys, at)
    elif lane is None and dialect is dialects.CAMUNDA:
        message = (
            f"user task {label(task_spec)} has no assignee, candidate users or candidate groups "
            "and is in no lane: set its candidate groups in the modeler (a group's key or name)"
        )
        problems.append(Problem(*at, message, task_spec.name))
    elif lane is None:
        message = (
            f"user task {label(task_spec)} is in no lane: put it in a lane named after the "
            "group that does it"
        )
        problems.append(Problem(*at, message, task_spec.name))
    elif not _is_applicant(lane):
        group_key = group_keys.get(lane) or group_keys.get(lane.lower())
    form, ui_form, found = _forms(task_spec, dialect, where, at)
    name = getattr(task_spec, "bpmn_name", None) or task_spec.name
    return TaskMeta(task_spec.name, name, lane, group_key, form, ui_form), problems + found


def _forms(task_spec, dialect, where: Where, at) -> tuple[str | None, str | None, list[Problem]]:
    """The deployed paths of a user task's form and UI schema, and what is wrong with them."""
    problems: list[Problem] = []
    ref = dialect.form_of(task_spec)
    form = _form_path(ref.schema, where)
    ui_form = _form_path(ref.ui_schema, where)
    if ref.schema and form is None and dialect is dialects.PLAIN:
        message = (
            f"user task {label(task_spec)} has no form (forms/{where.key}/{ref.schema}), so it "
            "accepts no data: its person can only mark it done"
        )
        problems.append(Problem(*at, message, task_spec.name, severity="warning"))
    elif ref.schema and form is None:
        message = (
            f"user task {label(task_spec)} uses the form `{ref.schema}`, which is not in "
            f"forms/{where.key}/ or forms/_shared/"
        )
        problems.append(Problem(*at, message, task_spec.name))
    if ref.ui_schema and ui_form is None:
        message = (
            f"user task {label(task_spec)} uses the UI schema `{ref.ui_schema}`, which is not "
            f"in forms/{where.key}/ or forms/_shared/"
        )
        problems.append(Problem(*at, message, task_spec.name))
    return form, ui_form, problems


def _literal(expression: str | None) -> list[str] | None:
    """The names a setting lists when it is written out (not computed), else None."""
    try:
        value = ast.literal_eval(expression) if expression else None
    except (ValueError, SyntaxError):
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return None
    return [str(i).strip() for i in items if str(i).strip()]


def _assignment(task_spec, settings: dict, group_keys, at) -> tuple[str | None, list[Problem]]:
    """The group key of written-out candidate groups (checked), and what is wrong with them."""
    problems: list[Problem] = []
    groups = _literal(settings.get("candidate_groups"))
    users = _literal(settings.get("candidate_users"))
    if groups and len(groups) > 1:
        message = (
            f"user task {label(task_spec)} has several candidate groups; only the first, "
            f"`{groups[0]}`, receives the task"
        )
        problems.append(Problem(*at, message, task_spec.name, severity="warning"))
    if (
        users
        and len(users) > 1
        and not settings.get("candidate_groups")
        and not settings.get("assignee")
    ):
        message = (
            f"user task {label(task_spec)} has several candidate users ({', '.join(users)}) "
            "and no candidate group; give it a candidate group, or one candidate user"
        )
        problems.append(Problem(*at, message, task_spec.name))
    if not groups:
        return None, problems
    key = group_keys.get(groups[0]) or group_keys.get(groups[0].lower())
    if key is None:
        close = difflib.get_close_matches(groups[0], list(group_keys), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        message = (
            f"user task {label(task_spec)} has the candidate group `{groups[0]}`, which is no "
            f"group{hint}"
        )
        problems.append(Problem(*at, message, task_spec.name))
    return key, problems


def _unknown_lane(lane: str, task_at: tuple, where: Where, group_keys) -> Problem:
    file, line, lane_id = where.lanes.get(lane, task_at)
    close = difflib.get_close_matches(lane, list(group_keys), n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    message = (
        f"the lane `{lane}` maps to no group{hint}; name the lane after an existing group, "
        f"or `{dialects.APPLICANT_LANE}` for the applicant's own tasks"
    )
    return Problem(file, line, message, lane_id)


def _service_task(task_spec, where: Where, operators: frozenset[str], at) -> list[Problem]:
    operator = _dialect(task_spec, where).operator_of(task_spec)
    if operator in operators:
        return []
    close = difflib.get_close_matches(operator or "", sorted(operators), n=1)
    hint = f"did you mean `{close[0]}`?" if close else "known: " + ", ".join(sorted(operators))
    message = (
        f"service task {label(task_spec)} calls the operator `{operator}`, which does not "
        f"exist ({hint})"
    )
    if isinstance(task_spec, ExternalTopicTask):
        message = (
            f"external task {label(task_spec)} has the topic `{operator}`, which is no "
            f"operator ({hint})"
        )
    return [Problem(*at, message, task_spec.name)]


def _form_path(filename: str | None, where: Where) -> str | None:
    if not filename:
        return None
    for candidate in (f"forms/{where.key}/{filename}", f"forms/_shared/{filename}"):
        if candidate in where.forms:
            return candidate
    return None

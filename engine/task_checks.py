"""Checks on the parsed tasks of a bundle: lanes that name groups, forms that exist, operators.

Decision: a user task's candidate group is its lane, resolved to a group key at deploy time and
stored with the version; an unknown lane is reported once, on the lane, not on every task in it.
A lane called `applicant` (or 申请人, initiator) belongs to whoever started the instance.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.spiff.specs.mixins.service_task import ServiceTask as ServiceTaskMixin

from engine import dialects
from engine.errors import Problem


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
            file, line = where.lines.get(task_spec.name, ("", None))
            if isinstance(task_spec, UserTaskMixin):
                meta, found = _user_task(task_spec, where, group_keys, (file, line))
                tasks[task_spec.name] = meta
                problems += found
                if meta.lane and meta.group_key is None and not _is_applicant(meta.lane):
                    unknown_lanes.setdefault(meta.lane, (file, line, task_spec.name))
            elif isinstance(task_spec, ServiceTaskMixin):
                problems += _service_task(task_spec, where, operators, (file, line))
    lanes = [_unknown_lane(lane, at, where, group_keys) for lane, at in unknown_lanes.items()]
    return tasks, lanes + problems


def _is_applicant(lane: str) -> bool:
    return lane.lower() in dialects.APPLICANT_ALIASES


def _dialect(task_spec, where: Where) -> dialects.Dialect:
    file = where.lines.get(task_spec.name, ("", 0))[0]
    return where.dialects.get(file, dialects.PLAIN)


def _user_task(task_spec, where: Where, group_keys, at) -> tuple[TaskMeta, list[Problem]]:
    dialect = _dialect(task_spec, where)
    problems = []
    lane = dialect.lane_of(task_spec)
    group_key = None
    if lane is None:
        message = (
            f"user task {label(task_spec)} is in no lane: put it in a lane named after the "
            "group that does it"
        )
        problems.append(Problem(*at, message, task_spec.name))
    elif not _is_applicant(lane):
        group_key = group_keys.get(lane) or group_keys.get(lane.lower())
    ref = dialect.form_of(task_spec)
    form = _form_path(ref.schema, where)
    ui_form = _form_path(ref.ui_schema, where)
    if ref.schema and form is None:
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
    name = getattr(task_spec, "bpmn_name", None) or task_spec.name
    return TaskMeta(task_spec.name, name, lane, group_key, form, ui_form), problems


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
    return [Problem(*at, message, task_spec.name)]


def _form_path(filename: str | None, where: Where) -> str | None:
    if not filename:
        return None
    for candidate in (f"forms/{where.key}/{filename}", f"forms/_shared/{filename}"):
        if candidate in where.forms:
            return candidate
    return None

"""Validation of a whole bundle before anything of it is stored.

Decision: one pass collects every problem (not just the first), each with file, line and
element id; SpiffWorkflow only parses a bundle whose XML already passed our own checks, and its
parse errors are translated, never shown raw. The result carries the parsed specs, so deploying
does not parse twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.specs.mixins import SubWorkflowTaskMixin
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.mixins.service_task import ServiceTask as ServiceTaskMixin

from engine import diagram_checks, dialects, safe_xml
from engine.errors import Problem
from engine.sources import BundleSource, SourceFile
from engine.spiff import ApprovalParser


@dataclass(frozen=True)
class Context:
    """What validation checks names against: the groups that exist and the operators registered."""

    group_keys: dict[str, str]  # any accepted lane spelling → group key
    operators: frozenset[str]
    max_bytes: int


@dataclass(frozen=True)
class TaskMeta:
    """A user task as the inbox needs it, resolved at deploy time."""

    element_id: str
    name: str
    lane: str | None
    group_key: str | None  # None: the applicant's own task
    form: str | None
    ui_form: str | None


@dataclass
class ParsedBundle:
    key: str
    checksum: str
    problems: list[Problem] = field(default_factory=list)
    dialect: str = ""
    specs: dict[str, Any] = field(default_factory=dict)
    main_process_id: str = ""
    tasks: dict[str, TaskMeta] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Files:
    bpmn: dict[str, tuple[etree._Element, dialects.Dialect]] = field(default_factory=dict)
    dmn: dict[str, etree._Element] = field(default_factory=dict)
    forms: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)


def validate(source: BundleSource, ctx: Context) -> ParsedBundle:
    """Every problem of the bundle; when there is none, its parsed specs and user tasks too."""
    result = ParsedBundle(source.key, source.checksum)
    files = _Files()
    for f in source.files:
        result.problems += _load(f, ctx, files)
    if not files.bpmn and not any(p.file.endswith(".bpmn") for p in result.problems):
        result.problems.append(
            Problem(f"processes/{source.key}", None, "the bundle has no .bpmn diagram")
        )
    if not result.ok:
        return result
    _parse(files, result)
    if result.ok:
        result.problems += _check_tasks(files, result, ctx)
        result.problems += _check_calls(files, result)
    return result


def _load(f: SourceFile, ctx: Context, files: _Files) -> list[Problem]:
    if len(f.content) > ctx.max_bytes:
        return [
            Problem(
                f.path,
                None,
                f"the file is {len(f.content):,} bytes; the limit is {ctx.max_bytes:,}",
            )
        ]
    if f.kind == "form":
        return _load_form(f, files)
    try:
        root = safe_xml.parse(f.content, max_bytes=ctx.max_bytes)
    except safe_xml.XmlRefused as err:
        return [Problem(f.path, err.line, err.message)]
    if f.kind == "dmn":
        if not dialects.is_dmn(root):
            return [
                Problem(
                    f.path,
                    root.sourceline,
                    f"this is not a DMN file (its root is <{etree.QName(root).localname}>)",
                )
            ]
        files.dmn[f.path] = root
        return diagram_checks.check_dmn(root, f.path, files.lines)
    return _load_bpmn(f, root, files)


def _load_bpmn(f: SourceFile, root: etree._Element, files: _Files) -> list[Problem]:
    if not dialects.is_bpmn(root):
        local = etree.QName(root).localname.lower()
        what = "HTML" if local in ("html", "body") else f"<{etree.QName(root).localname}>"
        return [Problem(f.path, root.sourceline, f"this looks like {what}, not BPMN")]
    dialect = dialects.detect(root)
    if isinstance(dialect, str):
        return [Problem(f.path, root.sourceline, dialect)]
    diagram_checks.quote_iso_timers(root)
    files.bpmn[f.path] = (root, dialect)
    return diagram_checks.check_bpmn(root, f.path, files.lines)


def _load_form(f: SourceFile, files: _Files) -> list[Problem]:
    try:
        schema = json.loads(f.content.decode("utf-8"))
    except UnicodeDecodeError:
        return [Problem(f.path, None, "the form is not UTF-8 text")]
    except json.JSONDecodeError as err:
        return [Problem(f.path, err.lineno, f"the form is not valid JSON: {err.msg}")]
    if f.path.endswith("-uischema.json"):
        files.forms[f.path] = schema
        return []
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        return [
            Problem(f.path, None, f"the form is not a valid JSON Schema at {where}: {err.message}")
        ]
    files.forms[f.path] = schema
    return []


def _parse(files: _Files, result: ParsedBundle) -> None:
    parser = ApprovalParser()
    try:
        for path, (root, _) in files.bpmn.items():
            parser.add_bpmn_xml(root, filename=path)
        for path, root in files.dmn.items():
            parser.add_dmn_xml(root, filename=path)
        result.specs = parser.find_all_specs()
    except SpiffWorkflowException as err:
        result.problems.append(_translate(err, files))
        return
    except RecursionError:
        result.problems.append(
            Problem(
                next(iter(files.bpmn)), None, "the diagram is nested or chained too deeply to parse"
            )
        )
        return
    _pick_main(files, result)


def _translate(err: SpiffWorkflowException, files: _Files) -> Problem:
    element_id = getattr(err, "id", "") or None
    file, line = files.lines.get(
        element_id, (getattr(err, "file_name", "") or next(iter(files.bpmn)), None)
    )
    message = str(err.args[0]) if err.args else str(err)
    return Problem(file, line, message[:1].lower() + message[1:], element_id)


def _pick_main(files: _Files, result: ParsedBundle) -> None:
    called = {
        s.spec
        for spec in result.specs.values()
        for s in spec.task_specs.values()
        if isinstance(s, SubWorkflowTaskMixin)
    }
    executable = {
        p.get("id")
        for root, _ in files.bpmn.values()
        for p in root.iterfind("bpmn:process", diagram_checks.NS)
        if p.get("isExecutable") == "true"
    }
    candidates = sorted((executable & set(result.specs)) - called)
    if result.key in candidates:
        result.main_process_id = result.key
    elif len(candidates) == 1:
        result.main_process_id = candidates[0]
    else:
        first = next(iter(files.bpmn))
        result.problems.append(
            Problem(
                first,
                None,
                f"several processes could start ({', '.join(candidates)}); "
                f"give the main one the id `{result.key}`",
            )
        )
    dialect_names = {d.name for _, d in files.bpmn.values()}
    result.dialect = "spiff" if "spiff" in dialect_names else "bpmn"


def _dialect_of(files: _Files, element_id: str) -> dialects.Dialect:
    file = files.lines.get(element_id, ("", 0))[0]
    return files.bpmn.get(file, (None, dialects.PLAIN))[1]


def _check_tasks(files: _Files, result: ParsedBundle, ctx: Context) -> list[Problem]:
    problems = []
    for spec in result.specs.values():
        for task_spec in spec.task_specs.values():
            dialect = _dialect_of(files, task_spec.name)
            file, line = files.lines.get(task_spec.name, ("", None))
            if isinstance(task_spec, UserTaskMixin):
                meta, found = _user_task(task_spec, dialect, result.key, files, ctx, (file, line))
                problems += found
                result.tasks[task_spec.name] = meta
            elif isinstance(task_spec, ServiceTaskMixin):
                operator = dialect.operator_of(task_spec)
                if operator not in ctx.operators:
                    known = ", ".join(sorted(ctx.operators))
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"service task {_label(task_spec)} calls the operator "
                            f"`{operator}`, which does not exist (known: {known})",
                            task_spec.name,
                        )
                    )
    return problems


def _label(task_spec) -> str:
    name = getattr(task_spec, "bpmn_name", None)
    return f"`{task_spec.name}` ({name})" if name else f"`{task_spec.name}`"


def _user_task(
    task_spec, dialect, key, files: _Files, ctx: Context, where
) -> tuple[TaskMeta, list[Problem]]:
    problems = []
    file, line = where
    lane = dialect.lane_of(task_spec)
    group_key = None
    if lane is None:
        problems.append(
            Problem(
                file,
                line,
                f"user task {_label(task_spec)} is in no lane: put it in a lane "
                "named after the group that does it",
                task_spec.name,
            )
        )
    elif lane.lower() not in dialects.APPLICANT_ALIASES:
        group_key = ctx.group_keys.get(lane) or ctx.group_keys.get(lane.lower())
        if group_key is None:
            problems.append(
                Problem(
                    file,
                    line,
                    f"the lane `{lane}` of user task {_label(task_spec)} maps to no "
                    "group; name the lane after an existing group",
                    task_spec.name,
                )
            )
    ref = dialect.form_of(task_spec)
    form = _form_path(ref.schema, key, files)
    ui_form = _form_path(ref.ui_schema, key, files) if ref.ui_schema else None
    if ref.schema and form is None:
        problems.append(
            Problem(
                file,
                line,
                f"user task {_label(task_spec)} uses the form `{ref.schema}`, which "
                f"is not in forms/{key}/ or forms/_shared/",
                task_spec.name,
            )
        )
    if ref.ui_schema and ui_form is None:
        problems.append(
            Problem(
                file,
                line,
                f"user task {_label(task_spec)} uses the UI schema "
                f"`{ref.ui_schema}`, which does not exist",
                task_spec.name,
            )
        )
    name = getattr(task_spec, "bpmn_name", None) or task_spec.name
    return TaskMeta(task_spec.name, name, lane, group_key, form, ui_form), problems


def _form_path(filename: str | None, key: str, files: _Files) -> str | None:
    if not filename:
        return None
    for candidate in (f"forms/{key}/{filename}", f"forms/_shared/{filename}"):
        if candidate in files.forms:
            return candidate
    return None


def _check_calls(files: _Files, result: ParsedBundle) -> list[Problem]:
    """Call activities must name a process of the bundle and never lead back to their caller."""
    calls: dict[str, set[str]] = {}
    problems = []
    for name, spec in result.specs.items():
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, SubWorkflowTaskMixin):
                calls.setdefault(name, set()).add(task_spec.spec)
    for caller, targets in calls.items():
        for target in sorted(targets - set(result.specs)):
            file, line = files.lines.get(caller, (next(iter(files.bpmn)), None))
            problems.append(
                Problem(
                    file,
                    line,
                    f"process `{caller}` calls `{target}`, which is not a process of this bundle",
                    caller,
                )
            )
    for start in calls:
        cycle = _find_cycle(start, calls)
        if cycle:
            file, line = files.lines.get(start, (next(iter(files.bpmn)), None))
            problems.append(
                Problem(
                    file,
                    line,
                    f"process `{start}` calls itself through "
                    f"{' → '.join(cycle)}: recursion is not allowed",
                    start,
                )
            )
    return problems


def _find_cycle(start: str, calls: dict[str, set[str]]) -> list[str] | None:
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for target in calls.get(node, ()):
            if target == start:
                return path + [target]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None

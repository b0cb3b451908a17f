"""Validation of a whole bundle before anything of it is stored.

Decision: one pass collects every problem (not just the first), each with file, line and
element id. Checks run in stages — each file alone (size, XML, forms), then the bundle's XML as a
whole (calls, decisions), then SpiffWorkflow's parse, then the parsed tasks — and a stage runs
only if the ones before found no error, so SpiffWorkflow never sees a diagram we would refuse
and one mistake is not reported again as its consequences. Each BPMN file is checked in its
dialect, and JUEL (`${...}`) and FEEL conditions are translated into the sandbox's language on
the tree first. The result carries the parsed specs (and the forms generated from Camunda's form
fields), so deploying does not parse twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.mixins import SubWorkflowTaskMixin

from engine import (
    bundle_checks,
    camunda_checks,
    diagram_checks,
    dialects,
    dmn_checks,
    expression_checks,
    form_checks,
    form_refs,
    inert,
    safe_xml,
    spec_parsing,
    task_checks,
)
from engine.diagram_checks import NS
from engine.errors import Problem
from engine.sources import BundleSource, SourceFile
from engine.task_checks import TaskMeta

__all__ = ["Context", "ParsedBundle", "TaskMeta", "validate"]


@dataclass(frozen=True)
class Context:
    """What validation checks names against: the groups that exist and the operators registered."""

    group_keys: dict[str, str]  # any accepted lane spelling → group key
    operators: frozenset[str]
    max_bytes: int


@dataclass
class ParsedBundle:
    key: str
    checksum: str
    problems: list[Problem] = field(default_factory=list)
    dialect: str = ""
    specs: dict[str, Any] = field(default_factory=dict)
    main_process_id: str = ""
    tasks: dict[str, TaskMeta] = field(default_factory=dict)
    #: Forms made from Camunda's generated form fields: deployed path → JSON Schema text.
    generated_forms: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Files:
    key: str
    bpmn: dict[str, tuple[etree._Element, dialects.Dialect]] = field(default_factory=dict)
    dmn: dict[str, etree._Element] = field(default_factory=dict)
    forms: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    generated: dict[str, str] = field(default_factory=dict)

    @property
    def first(self) -> str:
        return next(iter(self.bpmn))

    @property
    def trees(self) -> dict[str, etree._Element]:
        return {path: root for path, (root, _) in self.bpmn.items()}


def validate(source: BundleSource, ctx: Context) -> ParsedBundle:
    """Every problem of the bundle; when there is none, its parsed specs and user tasks too."""
    result = ParsedBundle(source.key, source.checksum)
    files = _Files(source.key)
    for f in source.files:
        result.problems += _load(f, ctx, files)
    result.problems += _add_generated(files, result)
    result.problems += _check_refs(files, source)
    if not files.bpmn and not any(p.file.endswith(".bpmn") for p in result.problems):
        message = "the bundle has no .bpmn diagram"
        result.problems.append(Problem(f"processes/{source.key}", None, message))
    if result.ok:
        decisions = {d.get("id") for root in files.dmn.values() for d in _decisions(root)}
        result.problems += bundle_checks.check_calls(files.trees)
        result.problems += bundle_checks.check_decisions(files.trees, decisions)
    if result.ok:
        _parse(files, result)
    if result.ok:
        _check_tasks(source.key, files, result, ctx)
    return result


def _decisions(root: etree._Element) -> list[etree._Element]:
    return root.findall(".//dmn:decision", {"dmn": etree.QName(root).namespace})


def _load(f: SourceFile, ctx: Context, files: _Files) -> list[Problem]:
    if len(f.content) > ctx.max_bytes:
        message = f"the file is {len(f.content):,} bytes; the limit is {ctx.max_bytes:,}"
        return [Problem(f.path, None, message)]
    if f.kind == "form":
        schema, problems = form_checks.load(f)
        if schema is not None:
            files.forms[f.path] = schema
        return problems
    if f.kind == "data":
        return _load_data(f)
    expected = "DMN" if f.kind == "dmn" else "BPMN"
    try:
        root = safe_xml.parse(f.content, max_bytes=ctx.max_bytes, expected=expected)
    except safe_xml.XmlRefused as err:
        return [Problem(f.path, err.line, err.message)]
    if f.kind == "bpmn":
        return _load_bpmn(f, root, files)
    if not dialects.is_dmn(root):
        return [Problem(f.path, root.sourceline, f"this looks like {_what(root)}, not DMN")]
    files.dmn[f.path] = root
    return dmn_checks.check_dmn(root, f.path, files.lines)


def _load_data(f: SourceFile) -> list[Problem]:
    """Operator data (scorecard, notification texts) must at least be JSON; operators check more."""
    try:
        json.loads(f.content.decode("utf-8"))
    except UnicodeDecodeError:
        return [Problem(f.path, None, "the file is not UTF-8 text")]
    except json.JSONDecodeError as err:
        return [Problem(f.path, err.lineno, f"the file is not valid JSON: {err.msg}")]
    return []


def _what(root: etree._Element) -> str:
    local = etree.QName(root).localname
    return "HTML" if local.lower() in ("html", "body") else f"<{local}>"


def _load_bpmn(f: SourceFile, root: etree._Element, files: _Files) -> list[Problem]:
    if not dialects.is_bpmn(root):
        return [Problem(f.path, root.sourceline, f"this looks like {_what(root)}, not BPMN")]
    dialect = dialects.detect(root)
    if isinstance(dialect, dialects.Refusal):
        owner = diagram_checks.owner_of(dialect.element)
        element_id = owner.get("id") if owner is not None else None
        return [Problem(f.path, dialect.element.sourceline, dialect.message, element_id)]
    expression_checks.quote_iso_timers(root)
    files.bpmn[f.path] = (root, dialect)
    problems = diagram_checks.check_bpmn(root, f.path, files.lines) + inert.check(root, f.path)
    found = camunda_checks.translate_standard(root, f.path)  # `${...}` is JUEL in any dialect
    if dialect is dialects.CAMUNDA:
        generated, settings = camunda_checks.check(root, f.path, files.key)
        files.generated.update(generated)
        found += settings
    if any(p.severity == "error" for p in found):
        return problems + found  # untranslated JUEL would only be reported again as bad Python
    return problems + found + expression_checks.check_expressions(root, f.path)


def _check_refs(files: _Files, source: BundleSource) -> list[Problem]:
    """Every `$ref` of a form must lead to a file of the bundle (shared types included)."""
    texts = {f.path: f.content.decode("utf-8", "replace") for f in source.files}
    problems = []
    for path in files.forms:
        reason = form_refs.check(path, files.forms)
        if reason is not None:
            ref = reason.split("`")[1]
            text = texts.get(path, "")
            line = text.count("\n", 0, text.find(ref)) + 1 if ref in text else None
            problems.append(Problem(path, line, reason))
    return problems


def _add_generated(files: _Files, result: ParsedBundle) -> list[Problem]:
    """Forms generated from Camunda form fields join the bundle's forms, unless a file has
    their name."""
    problems = []
    for path, text in files.generated.items():
        if path in files.forms:
            message = "this file has the name of a form the engine generates; rename it"
            problems.append(Problem(path, None, message))
        files.forms[path] = json.loads(text)
    result.generated_forms = dict(files.generated)
    return problems


def _parse(files: _Files, result: ParsedBundle) -> None:
    trees = files.trees
    for root in trees.values():
        inert.strip(root)
    found = [d for _, d in files.bpmn.values()]
    parser = dialects.parser_class(found)
    result.specs, problems = spec_parsing.parse(trees, files.dmn, files.lines, parser)
    result.problems += problems
    if result.ok:
        result.problems += spec_parsing.trial_start(result.specs, files.lines, files.first)
    if result.ok:
        _pick_main(files, result)
    names = {d.name for d in found}
    result.dialect = next((n for n in ("camunda", "spiff") if n in names), "bpmn")


def _pick_main(files: _Files, result: ParsedBundle) -> None:
    """The process that starts: the one named after the bundle, else the only one not called."""
    called = {
        s.spec
        for name, spec in result.specs.items()
        for s in spec.task_specs.values()
        if isinstance(s, SubWorkflowTaskMixin) and s.spec != name
    }
    executable = {
        p.get("id")
        for root in files.trees.values()
        for p in root.iterfind("bpmn:process", NS)
        if p.get("isExecutable") == "true"
    }
    candidates = sorted((executable & set(result.specs)) - called)
    if result.key in candidates:
        result.main_process_id = result.key
    elif len(candidates) == 1:
        result.main_process_id = candidates[0]
    elif candidates:
        file, line = files.lines.get(candidates[0], (files.first, None))
        message = (
            f"several processes could start ({', '.join(candidates)}); "
            f"give the main one the id `{result.key}`"
        )
        result.problems.append(Problem(file, line, message, candidates[0]))
    else:
        message = "every process is called by another, so none can start"
        result.problems.append(Problem(files.first, None, message))


def _check_tasks(key: str, files: _Files, result: ParsedBundle, ctx: Context) -> None:
    lanes = {
        (lane.get("name") or "").strip(): (path, lane.sourceline, lane.get("id"))
        for path, root in files.trees.items()
        for lane in root.iterfind(".//bpmn:lane", NS)
    }
    where = task_checks.Where(
        key, files.lines, lanes, {p: d for p, (_, d) in files.bpmn.items()}, files.forms
    )
    result.tasks, problems = task_checks.check_tasks(
        result.specs, where, ctx.group_keys, ctx.operators
    )
    result.problems += problems

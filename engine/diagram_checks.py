"""Checks on the XML of one BPMN or DMN file, before SpiffWorkflow sees it.

Decision: SpiffWorkflow's own parse errors are misleading for the commonest mistakes (a flow to
a missing element, duplicate ids, a reserved id), so those are found here first, on the tree,
each with file, line and element id in the analyst's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from engine import expressions
from engine.dialects import BPMN_NS, SPIFF_NS
from engine.errors import ExpressionError, Problem

NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
RESERVED_IDS = {"Start", "End", "Root"}
GATEWAYS_NEEDING_CONDITIONS = ("exclusiveGateway", "inclusiveGateway")
ISO_TIMER = re.compile(r"^(R\d*/)?(P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}[0-9T:.+\-Z]*)(/.+)?$")
SUPPORTED_HIT_POLICIES = {"UNIQUE", "COLLECT"}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _elements(root: etree._Element) -> Iterator[etree._Element]:
    return (el for el in root.iter() if isinstance(el.tag, str))


def check_ids(
    root: etree._Element, filename: str, seen: dict[str, tuple[str, int]]
) -> list[Problem]:
    """Duplicate ids (also across the files of a bundle, via `seen`) and ids the engine reserves."""
    problems = []
    for el in _elements(root):
        element_id = el.get("id")
        if not element_id:
            continue
        if element_id in seen:
            other_file, other_line = seen[element_id]
            where = f"line {other_line}" if other_file == filename else f"{other_file}:{other_line}"
            problems.append(
                Problem(
                    filename,
                    el.sourceline,
                    f"two elements share the id `{element_id}` "
                    f"(lines {other_line} and {el.sourceline})"
                    if other_file == filename
                    else f"the id `{element_id}` is also used at {where}",
                    element_id,
                )
            )
        else:
            seen[element_id] = (filename, el.sourceline)
        if element_id in RESERVED_IDS or element_id.endswith(".EndJoin"):
            problems.append(
                Problem(
                    filename,
                    el.sourceline,
                    f"the id `{element_id}` is reserved by the engine; rename the element",
                    element_id,
                )
            )
    return problems


def check_flows(root: etree._Element, filename: str) -> list[Problem]:
    """Sequence flows whose source or target does not exist in the same process."""
    problems = []
    for process in root.iterfind(".//bpmn:process", NS):
        ids = {el.get("id") for el in _elements(process) if el.get("id")}
        for flow in process.iterfind(".//bpmn:sequenceFlow", NS):
            for attr, word in (("sourceRef", "comes from"), ("targetRef", "goes to")):
                ref = flow.get(attr)
                if not ref or ref not in ids:
                    problems.append(
                        Problem(
                            filename,
                            flow.sourceline,
                            f"sequence flow {flow.get('id')} "
                            f"{word} `{ref or ''}`, which does not exist",
                            flow.get("id"),
                        )
                    )
    return problems


def check_gateways(root: etree._Element, filename: str) -> list[Problem]:
    """Every outgoing flow of a deciding gateway needs a condition, except the default flow."""
    problems = []
    flows = {f.get("id"): f for f in root.iterfind(".//bpmn:sequenceFlow", NS)}
    for kind in GATEWAYS_NEEDING_CONDITIONS:
        for gateway in root.iterfind(f".//bpmn:{kind}", NS):
            outgoing = [flows[f] for f in _outgoing_ids(gateway, flows)]
            if len(outgoing) < 2:
                continue
            for flow in outgoing:
                if flow.get("id") == gateway.get("default"):
                    continue
                condition = flow.find("bpmn:conditionExpression", NS)
                if condition is None or not (condition.text or "").strip():
                    problems.append(
                        Problem(
                            filename,
                            flow.sourceline,
                            f"gateway {_name(gateway)}: flow "
                            f"{flow.get('id')} has no condition and is not the default "
                            "flow",
                            gateway.get("id"),
                        )
                    )
    return problems


def _outgoing_ids(gateway: etree._Element, flows: dict) -> list[str]:
    return [fid for fid, f in flows.items() if f.get("sourceRef") == gateway.get("id")]


def _name(el: etree._Element) -> str:
    name = el.get("name")
    return f"`{el.get('id')}` ({name})" if name else f"`{el.get('id')}`"


def _compile(source: str, mode: str, filename: str, el: etree._Element, what: str) -> list[Problem]:
    try:
        expressions.check(source, mode)
    except ExpressionError as err:
        line = el.sourceline + ((err.line or 1) - 1 if mode == "exec" else 0)
        return [Problem(filename, line, f"{what} of {_name(el)}: {err.reason}", el.get("id"))]
    return []


def check_expressions(root: etree._Element, filename: str) -> list[Problem]:
    """Conditions, scripts, pre/post scripts, operator parameters and timers must compile."""
    problems = []
    for cond in root.iterfind(".//bpmn:conditionExpression", NS):
        problems += _compile(
            (cond.text or "").strip() or "True", "eval", filename, cond.getparent(), "the condition"
        )
    for task in root.iterfind(".//bpmn:scriptTask", NS):
        script = task.find("bpmn:script", NS)
        if script is None or not (script.text or "").strip():
            problems.append(
                Problem(
                    filename,
                    task.sourceline,
                    f"script task {_name(task)} has no script",
                    task.get("id"),
                )
            )
        else:
            problems += _compile(script.text, "exec", filename, task, "the script")
    for tag in ("preScript", "postScript"):
        for node in root.iterfind(f".//spiffworkflow:{tag}", NS):
            owner = node.getparent().getparent()
            problems += _compile(node.text or "", "exec", filename, owner, f"the {tag}")
    for param in root.iterfind(".//spiffworkflow:parameter", NS):
        owner = param.getparent().getparent().getparent().getparent()
        problems += _compile(
            param.get("value") or "None",
            "eval",
            filename,
            owner,
            f"operator parameter `{param.get('id')}`",
        )
    for timer in root.iterfind(".//bpmn:timerEventDefinition/*", NS):
        problems += _compile(
            (timer.text or "").strip() or "''",
            "eval",
            filename,
            timer.getparent().getparent(),
            "the timer",
        )
    return problems


def quote_iso_timers(root: etree._Element) -> None:
    """Plain BPMN writes `PT48H`; the engine evaluates timer text, so quote bare ISO 8601 values."""
    for timer in root.iterfind(".//bpmn:timerEventDefinition/*", NS):
        text = (timer.text or "").strip()
        if ISO_TIMER.match(text):
            timer.text = repr(text)


def check_executable(root: etree._Element, filename: str) -> list[Problem]:
    processes = root.findall("bpmn:process", NS)
    if any(p.get("isExecutable") == "true" for p in processes):
        return []
    line = processes[0].sourceline if processes else root.sourceline
    return [
        Problem(
            filename, line, 'no executable process: set isExecutable="true" on the process to run'
        )
    ]


def check_bpmn(root: etree._Element, filename: str, seen_ids: dict) -> list[Problem]:
    """Every XML-level check of one BPMN file."""
    return (
        check_executable(root, filename)
        + check_ids(root, filename, seen_ids)
        + check_flows(root, filename)
        + check_gateways(root, filename)
        + check_expressions(root, filename)
    )


def check_dmn(root: etree._Element, filename: str, seen_ids: dict) -> list[Problem]:
    """Ids, supported hit policies, and every cell compiling the way the DMN engine will run it."""
    problems = check_ids(root, filename, seen_ids)
    ns = {"dmn": etree.QName(root).namespace}
    for table in root.iterfind(".//dmn:decisionTable", ns):
        policy = table.get("hitPolicy", "UNIQUE").upper()
        if policy not in SUPPORTED_HIT_POLICIES:
            problems.append(
                Problem(
                    filename,
                    table.sourceline,
                    f"hit policy {policy} is not supported (use UNIQUE or COLLECT)",
                    table.get("id"),
                )
            )
        inputs = [
            (i.findtext("dmn:inputExpression/dmn:text", "", ns) or "").strip()
            for i in table.iterfind("dmn:input", ns)
        ]
        problems += _check_rules(table, inputs, filename, ns)
    return problems


def _check_rules(table, inputs: list[str], filename: str, ns: dict) -> list[Problem]:
    problems = []
    for expr, el in zip(inputs, table.iterfind("dmn:input", ns), strict=False):
        problems += _compile(expr or "None", "eval", filename, el, "the input expression")
    for rule in table.iterfind("dmn:rule", ns):
        for index, entry in enumerate(rule.iterfind("dmn:inputEntry", ns)):
            cell = (entry.findtext("dmn:text", "", ns) or "").strip()
            if cell in ("", "-") or index >= len(inputs):
                continue
            problems += _check_cell(inputs[index], cell, filename, entry)
        for entry in rule.iterfind("dmn:outputEntry", ns):
            cell = (entry.findtext("dmn:text", "", ns) or "").strip()
            problems += _compile(cell or "None", "eval", filename, entry, "the output")
    return problems


def _check_cell(input_expr: str, cell: str, filename: str, entry) -> list[Problem]:
    # Mirrors SpiffWorkflow's DMN engine: a cell is either a value (compared with ==),
    # a test with `?` standing for the input, or an operator continuing the input (`< 5`).
    for candidate in (cell.replace("?", "(dmninputexpr)"), f"({input_expr}) {cell}"):
        try:
            expressions.check(candidate, "eval")
            return []
        except ExpressionError:
            continue
    return [
        Problem(
            filename,
            entry.sourceline,
            f"the DMN cell `{cell}` is not a valid expression",
            entry.get("id"),
        )
    ]

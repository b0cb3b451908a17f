"""Checks that every piece of code in a BPMN file compiles in the sandbox, and timers read.

Decision: diagram code is compiled by `engine.expressions` exactly as it will run, so a script,
condition or operator parameter that would fail for the first applicant fails the deploy
instead, on the line of the code itself (line 2 of a script on line 90 is line 91).
"""

from __future__ import annotations

import ast
import re

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine import expressions
from engine.diagram_checks import NS, label, owner_of
from engine.errors import ExpressionError, Problem

ISO_TIMER = re.compile(r"^(R\d*/)?(P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}[0-9T:.+\-Z]*)(/.+)?$")
# Expression elements: (path, what it is called, value when empty; None: it may not be empty).
_EXPRESSIONS = (
    (".//bpmn:conditionExpression", "the condition", "True"),
    (".//bpmn:conditionalEventDefinition/bpmn:condition", "the condition", None),
    (".//bpmn:loopCardinality", "the number of instances", None),
    (".//bpmn:completionCondition", "the completion condition", None),
    (".//bpmn:loopCondition", "the loop condition", None),
)
# Timer kinds: how SpiffWorkflow reads a fixed value, and an example for the message.
_TIMERS = {
    "timeDuration": (
        TimerEventDefinition.parse_iso_duration,
        "a duration such as 'P2D' or 'PT48H'",
    ),
    "timeDate": (TimerEventDefinition.get_datetime, "a date such as '2025-06-30T09:00:00+08:00'"),
    "timeCycle": (TimerEventDefinition.parse_iso_recurring_interval, "a cycle such as 'R3/PT1H'"),
}


def compile_problems(
    source: str, mode: str, filename: str, owner: etree._Element, what: str, at=None
) -> list[Problem]:
    """`source` compiled in `mode`, or one problem naming `owner`, on the line of `at`."""
    try:
        expressions.check(source, mode)
    except ExpressionError as err:
        start = (at if at is not None else owner).sourceline
        line = start + ((err.line or 1) - 1 if mode == "exec" else 0)
        return [Problem(filename, line, f"{what} of {label(owner)}: {err.reason}", owner.get("id"))]
    return []


def check_scripts(root: etree._Element, filename: str) -> list[Problem]:
    """Script tasks need a script; scripts and pre/post scripts must compile."""
    problems = []
    for task in root.iterfind(".//bpmn:scriptTask", NS):
        script = task.find("bpmn:script", NS)
        if script is None or not (script.text or "").strip():
            message = f"script task {label(task)} has no script"
            problems.append(Problem(filename, task.sourceline, message, task.get("id")))
        else:
            problems += compile_problems(script.text, "exec", filename, task, "the script", script)
    for tag in ("preScript", "postScript"):
        for node in root.iterfind(f".//spiffworkflow:{tag}", NS):
            owner = owner_of(node)
            problems += compile_problems(
                node.text or "", "exec", filename, owner, f"the {tag}", node
            )
    return problems


def check_expressions(root: etree._Element, filename: str) -> list[Problem]:
    """Scripts, conditions, loop expressions, timers and operator parameters."""
    problems = check_scripts(root, filename) + check_timers(root, filename)
    for path, what, default in _EXPRESSIONS:
        for node in root.iterfind(path, NS):
            text = (node.text or "").strip() or default
            owner = owner_of(node.getparent())
            if text is None:
                message = f"{what} of {label(owner)} is empty"
                problems.append(Problem(filename, node.sourceline, message, owner.get("id")))
            else:
                problems += compile_problems(text, "eval", filename, owner, what, node)
    for param in root.iterfind(".//spiffworkflow:parameter", NS):
        what = f"operator parameter `{param.get('id')}`"
        value = param.get("value") or "None"
        problems += compile_problems(value, "eval", filename, owner_of(param), what, param)
    return problems


def check_timers(root: etree._Element, filename: str) -> list[Problem]:
    """A timer has one time; it compiles, and a fixed value is one the engine can read."""
    problems = []
    for definition in root.iterfind(".//bpmn:timerEventDefinition", NS):
        owner = owner_of(definition.getparent())
        times = [t for t in definition if etree.QName(t).localname in _TIMERS]
        if not times or not (times[0].text or "").strip():
            message = f"the timer of {label(owner)} has no duration, date or cycle"
            problems.append(Problem(filename, definition.sourceline, message, owner.get("id")))
            continue
        text = times[0].text.strip()
        found = compile_problems(text, "eval", filename, owner, "the timer", times[0])
        problems += found or _fixed_time(times[0], text, filename, owner)
    return problems


def _fixed_time(node, text: str, filename: str, owner) -> list[Problem]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []  # an expression: its value is known only at run time
    read, example = _TIMERS[etree.QName(node).localname]
    try:
        read(value)
    except Exception:  # SpiffWorkflow raises bare Exception, ValueError, KeyError, TypeError...
        message = f"the timer of {label(owner)}: `{value}` is not {example}"
        return [Problem(filename, node.sourceline, message, owner.get("id"))]
    return []


def quote_iso_timers(root: etree._Element) -> None:
    """Plain BPMN writes `PT48H`; the engine evaluates timer text, so quote bare ISO 8601 values."""
    for timer in root.iterfind(".//bpmn:timerEventDefinition/*", NS):
        text = (timer.text or "").strip()
        if ISO_TIMER.match(text):
            timer.text = repr(text)

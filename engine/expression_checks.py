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

from engine import expressions, feel
from engine.diagram_checks import NS, label, owner_of
from engine.errors import ExpressionError, Problem

# Quartz cron (Camunda's timer cycles): 5 to 7 fields of digits, names, * ? / , - L W #.
CRON = re.compile(r"^\s*[0-9A-Za-z*?/,\-#]+(\s+[0-9A-Za-z*?/,\-#]+){4,6}\s*$")
PYTHON_SCRIPTS = frozenset({"", "python", "text/python", "text/x-python", "py"})
READABLE_LANGUAGES = ("python", "juel", "spiff")
LANGUAGE_NAMES = {
    "xpath": "XPath",
    "groovy": "Groovy",
    "javascript": "JavaScript",
    "xhtml": "XHTML",
}
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
        language = (task.get("scriptFormat") or "").strip()
        if language.lower() not in PYTHON_SCRIPTS:
            message = (
                f"script task {label(task)} is written in {language}; scripts here are Python "
                "(the engine's safe subset): rewrite it, or make it a service task"
            )
            problems.append(Problem(filename, task.sourceline, message, task.get("id")))
        elif script is None or not (script.text or "").strip():
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
    problems = translate_feel(root, filename)
    problems += check_scripts(root, filename) + check_timers(root, filename)
    for path, what, default in _EXPRESSIONS:
        for node in root.iterfind(path, NS):
            text = (node.text or "").strip() or default
            owner = owner_of(node.getparent())
            if text is None:
                message = f"{what} of {label(owner)} is empty"
                problems.append(Problem(filename, node.sourceline, message, owner.get("id")))
                continue
            if "feel" in (node.get("language") or root.get("expressionLanguage") or "").lower():
                continue  # FEEL left untranslated: `translate_feel` said why
            language = _foreign_language(node, root)
            if language:
                message = (
                    f"{what} of {label(owner)} is written in {language} (`{text}`), which the "
                    "engine does not read; write it as a Python-style expression such as "
                    "`amount > 1000`"
                )
                problems.append(Problem(filename, node.sourceline, message, owner.get("id")))
            else:
                problems += compile_problems(
                    node.text or default, "eval", filename, owner, what, node
                )
    for param in root.iterfind(".//spiffworkflow:parameter", NS):
        what = f"operator parameter `{param.get('id')}`"
        value = param.get("value") or "None"
        problems += compile_problems(value, "eval", filename, owner_of(param), what, param)
    return problems


def _foreign_language(node: etree._Element, root: etree._Element) -> str | None:
    """The expression language `node` is written in, when it is one the engine cannot read.

    FEEL is translated by `translate_feel`; what is left here is XPath, Groovy, JavaScript and
    the like. Without a `language`, the file's `expressionLanguage` counts.
    """
    language = (node.get("language") or root.get("expressionLanguage") or "").strip()
    lowered = language.lower()
    if not language or any(word in lowered for word in READABLE_LANGUAGES):
        return None
    return next((name for key, name in LANGUAGE_NAMES.items() if key in lowered), language)


def translate_feel(root: etree._Element, filename: str) -> list[Problem]:
    """Conditions written in FEEL (by their `language` or the file's `expressionLanguage`)
    replaced by their translation, in place; a FEEL text outside the subset is a problem."""
    problems = []
    for path, what, _ in _EXPRESSIONS:
        for node in root.iterfind(path, NS):
            language = (node.get("language") or root.get("expressionLanguage") or "").lower()
            text = (node.text or "").strip()
            if "feel" not in language or not text:
                continue
            try:
                node.text = feel.expression(text.lstrip("="))
                node.set("language", "python")
            except ValueError:
                owner = owner_of(node.getparent())
                message = (
                    f"{what} of {label(owner)} is FEEL the engine cannot read (`{text}`): use "
                    "variables without spaces, literals, comparisons, and/or, not(...)"
                )
                problems.append(Problem(filename, node.sourceline, message, owner.get("id")))
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
        if CRON.match(text) and not ISO_TIMER.match(text):
            message = (
                f"the timer of {label(owner)} is a cron expression (`{text}`), which the engine "
                "does not read; write an ISO 8601 cycle such as `R/PT5M` (every five minutes) "
                "or `R3/PT1H` (three times, hourly)"
            )
            problems.append(Problem(filename, times[0].sourceline, message, owner.get("id")))
            continue
        found = compile_problems(text, "eval", filename, owner, "the timer", times[0])
        problems += found or _fixed_time(times[0], text, filename, owner)
        starts = etree.QName(owner).localname == "startEvent"
        if starts and etree.QName(owner.getparent()).localname == "process" and not found:
            message = (
                f"the start event {label(owner)} has a timer: instances here are started by "
                "people, so a new instance waits until the timer fires"
            )
            problems.append(
                Problem(filename, owner.sourceline, message, owner.get("id"), "warning")
            )
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

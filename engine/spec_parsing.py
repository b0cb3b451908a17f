"""Turning a bundle's checked XML into SpiffWorkflow specs, with every failure in plain words.

Decisions: (1) SpiffWorkflow's parser recurses once per task along the sequence flows (about two
Python frames a task), so a long chain exceeds Python's recursion limit; the parse runs on a
deep stack (`engine.deep`). (2) Its exceptions are translated, never shown raw: they carry an
element id but no line, so the line comes from our own index of ids. (3) Each process is started
once on trial, exactly as a new instance starts (on a deep stack when it is long): what cannot
start — beyond `deep.MAX_RECURSION` — is refused at deploy.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine import spiff
from engine.deep import FRAMES_PER_ELEMENT, run_deep
from engine.errors import Problem
from engine.spiff import ApprovalParser

_PYTHON_ERROR = re.compile(r"^[A-Z]\w*(Error|Exception)\(")

# SpiffWorkflow's messages → the analyst's words; {id} is the element the exception names.
_MESSAGES = (
    (
        r"Multiple outgoing flows are not supported",
        "`{id}` has several outgoing sequence flows; only a gateway may split the path: add "
        "one after it",
    ),
    (r"No start event found", "process `{id}` has no start event"),
    (r"Duplicate process ID", "two processes share the id `{id}`"),
    (
        r"There is no support implemented for this task type",
        "`{id}` is a {kind}, which the engine does not support",
    ),
    (
        r"A loopMaximum or loopCondition must be specified",
        "loop task `{id}` needs a loop condition or a maximum number of loops",
    ),
    (
        r"A multiinstance task must specify a cardinality or a loop input",
        "multi-instance task `{id}` needs a number of instances or a collection to loop over",
    ),
    (
        r"must specify exactly one of cardinality or loop input",
        "multi-instance task `{id}` has both a number of instances and a collection to loop "
        "over; keep one",
    ),
    (r"Conditional event definition with missing condition", "event `{id}` has no condition"),
    (r"Time Specification Error|Unknown Time Specification", "the timer of `{id}` is not valid"),
    (r"Data Store .* has no implementation", "data stores are not supported; use task data"),
    (
        r"A Service Task must have an operator|this service task names no operator",
        "service task `{id}` names no operator: add one in the modeler (or set its "
        "implementation to an operator name)",
    ),
    (
        r"Cancel Events may only be used with transactions",
        "`{id}` has a cancel boundary event, which only a transaction subprocess may have",
    ),
    (r"Malformed Output Expression", "the output cell `{id}` is not a valid expression"),
    (
        r"Exactly one start event is required in a SubWorkflow",
        "subprocess `{id}` needs exactly one start event",
    ),
    (r"A SubWorkflow Must contain an End event", "subprocess `{id}` needs an end event"),
)


def parse(
    bpmn: dict[str, etree._Element],
    dmn: dict[str, etree._Element],
    lines: dict[str, tuple[str, int]],
    parser_class: type = ApprovalParser,
) -> tuple[dict[str, Any], list[Problem]]:
    """The specs of every executable process, or the problems that stopped the parse."""
    elements = sum(1 for root in (*bpmn.values(), *dmn.values()) for _ in root.iter())

    def work() -> dict[str, Any]:
        parser = parser_class()
        for path, root in bpmn.items():
            parser.add_bpmn_xml(root, filename=path)
        for path, root in dmn.items():
            parser.add_dmn_xml(root, filename=path)
        return parser.find_all_specs()

    first = next(iter(bpmn))
    try:
        return run_deep(work, 1_000 + FRAMES_PER_ELEMENT * elements), []
    except SpiffWorkflowException as err:
        if _is_recursion(err):
            return {}, [_too_deep(first, lines, getattr(err, "id", None))]
        return {}, [translate(err, lines, first, {**bpmn, **dmn})]
    except RecursionError:
        return {}, [_too_deep(first, lines, None)]
    except Exception as err:  # untrusted input must never crash validation
        return {}, [_internal(first, err)]


def _is_recursion(err: BaseException) -> bool:
    # SpiffWorkflow wraps any error of a task's parse in a ValidationException("%r" % error).
    while err is not None:
        if isinstance(err, RecursionError):
            return True
        err = err.__cause__ or err.__context__
    return False


def _too_deep(first: str, lines: dict, element_id: str | None) -> Problem:
    file, line = lines.get(element_id, (first, None)) if element_id else (first, None)
    message = (
        "the diagram chains or nests more steps than the engine can follow; split it into "
        "call activities"
    )
    return Problem(file, line, message, element_id)


def _line_of_tag(root: etree._Element | None, tag: str) -> int | None:
    """The line of the first element with SpiffWorkflow's tag (`bpmn:task` or `{ns}name`)."""
    if root is None or not tag:
        return None
    name = tag.split(":", 1)[1] if tag.startswith("bpmn:") else tag
    for el in root.iter():
        if isinstance(el.tag, str) and (el.tag == name or etree.QName(el).localname == name):
            return el.sourceline
    return None


def translate(
    err: SpiffWorkflowException, lines: dict, default_file: str, trees: dict | None = None
) -> Problem:
    """SpiffWorkflow's exception as a located problem in plain words."""
    element_id = getattr(err, "id", "") or None
    file = getattr(err, "file_name", "") or default_file
    file, line = lines.get(element_id, (file, None)) if element_id else (file, None)
    if line is None:
        line = _line_of_tag((trees or {}).get(file), getattr(err, "tag", ""))
    raw = str(err.args[0]) if err.args else str(err)
    kind = getattr(err, "tag", "").rpartition(":")[2].rpartition("}")[2] or "element"
    for pattern, words in _MESSAGES:
        if re.search(pattern, raw):
            return Problem(file, line, words.format(id=element_id, kind=kind), element_id)
    where = f" `{element_id}`" if element_id else " this"
    if _PYTHON_ERROR.match(raw):  # an internal failure: its text would mean nothing to anyone
        message = f"the engine cannot read{where} {kind}: a setting is missing or not supported"
    else:
        message = f"the engine cannot read{where} {kind}: {raw}"
    return Problem(file, line, message, element_id)


def trial_start(specs: dict[str, Any], lines: dict, default_file: str) -> list[Problem]:
    """Start every process once, as a new instance would."""
    problems = []
    for process_id in specs:
        try:
            spiff.new_workflow(specs, process_id, step_limit=1)
        except RecursionError:
            file, line = lines.get(process_id, (default_file, None))
            steps = len(specs[process_id].task_specs)
            message = (
                f"process `{process_id}` has too many steps in a row for the engine to start "
                f"it ({steps:,} steps); split it into call activities of a few hundred steps"
            )
            problems.append(Problem(file, line, message, process_id))
        except SpiffWorkflowException as err:
            problems.append(translate(err, lines, default_file))
        except Exception as err:  # untrusted input must never crash validation
            problems.append(_internal(default_file, err))
    return problems


def _internal(file: str, err: Exception) -> Problem:
    """A failure SpiffWorkflow did not foresee: no element to name, so say what to do."""
    message = (
        f"the engine cannot read this diagram ({type(err).__name__}); check the elements you "
        "changed last, or send the file to the administrators"
    )
    return Problem(file, None, message)

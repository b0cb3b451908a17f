"""Checks on the XML of BPMN files, before SpiffWorkflow sees them.

Decision: SpiffWorkflow's own parse errors are misleading for the commonest mistakes (a flow to
a missing element, duplicate ids, a reserved id, a call to a missing process), so those are found
here first, on the tree, each with file, line and element id in the analyst's words. Extension
elements (`spiffworkflow:parameter id="amount"`) are not model elements: their ids may repeat.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from lxml import etree

from engine.dialects import BPMN_NS, DMN_NAMESPACES, SPIFF_NS
from engine.errors import Problem

NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
MODEL_NAMESPACES = frozenset(
    {
        BPMN_NS,
        "http://www.omg.org/spec/BPMN/20100524/DI",
        DC_NS,
        DI_NS,
        *DMN_NAMESPACES,
        "https://www.omg.org/spec/DMN/20191111/DMNDI/",
        "http://www.omg.org/spec/DMN/20180521/DC/",
        "http://www.omg.org/spec/DMN/20180521/DI/",
    }
)
# Names SpiffWorkflow gives its own task specs; an element with such an id replaces one of them.
RESERVED_IDS = {"Start", "End", "Root", "StartEventSplit", "StartEventJoin"}
RESERVED_SUFFIXES = (".EndJoin", ".BoundaryEventSplit", ".BoundaryEventJoin")
CONTAINERS = ("process", "subProcess", "transaction", "adHocSubProcess")
# Children of a process that may go without an id (documentation, layout helpers, artifacts).
ID_OPTIONAL = frozenset(
    {"documentation", "extensionElements", "ioSpecification", "property", "laneSet"}
    | {"textAnnotation", "association", "group", "incoming", "outgoing", "categoryValue"}
    | {"multiInstanceLoopCharacteristics", "standardLoopCharacteristics", "auditing"}
    | {"performer", "humanPerformer", "potentialOwner", "resourceRole", "monitoring"}
    | {"dataInputAssociation", "dataOutputAssociation"}
)
ACTIVITIES = frozenset({"task", "callActivity", "subProcess", "transaction", "adHocSubProcess"})
EVENT_REFS = {
    "message": "messageRef",
    "signal": "signalRef",
    "error": "errorRef",
    "escalation": "escalationRef",
}
# Attributes SpiffWorkflow reads as `attrib[...]`: without them its parse fails with a KeyError.
SPIFF_REQUIRED = {
    "serviceTaskOperator": ("id",),
    "parameter": ("id", "value", "type"),
    "property": ("name", "value"),
    "unitTest": ("id",),
}
GATEWAYS_NEEDING_CONDITIONS = ("exclusiveGateway", "inclusiveGateway")


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def is_model(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).namespace in MODEL_NAMESPACES


def _model_ids(root: etree._Element) -> Iterator[etree._Element]:
    return (el for el in root.iter() if is_model(el) and el.get("id"))


def _shared(root: etree._Element) -> set[etree._Element]:
    """Elements the engine keys by id across a bundle: processes, activities and decisions.

    Other ids (events, flows, diagram shapes) only need to be unique within their file, so two
    files drawn in bpmn.io may both keep `StartEvent_1`. A set of the elements themselves, not
    their `id()`: it keeps lxml's proxies alive, so an element met again is the same object.
    """
    processes = list(root.iterfind("bpmn:process", NS))
    activities = {
        el
        for process in processes
        for el in process.iter()
        if is_model(el) and (_local(el) in ACTIVITIES or _local(el).endswith("Task"))
    }
    return set(processes) | activities | {el for el in root if _local(el) == "decision"}


def owner_of(el: etree._Element) -> etree._Element:
    """The nearest enclosing flow element or flow with an id (the task a setting belongs to)."""
    node = el
    while node is not None and not (is_model(node) and node.get("id") and not _is_part(node)):
        node = node.getparent()
    return el if node is None else node


def _is_part(el: etree._Element) -> bool:
    # Event definitions and loop characteristics may carry ids, but the analyst knows the event.
    return _local(el).endswith(("EventDefinition", "LoopCharacteristics"))


def _ref(el: etree._Element) -> str:
    return el.get("id") or f"(line {el.sourceline})"


def label(el: etree._Element) -> str:
    """How a message names an element: `Task_review` (人工审核 Credit review)."""
    ref = f"`{el.get('id')}`" if el.get("id") else f"<{_local(el)}> on line {el.sourceline}"
    return f"{ref} ({el.get('name')})" if el.get("name") else ref


def check_ids(
    root: etree._Element, filename: str, seen: dict[str, tuple[str, int]]
) -> list[Problem]:
    """Duplicate ids (in the file, and across files via `seen`) and ids the engine reserves.

    `seen` (element id → file, line) is filled in for every model element; later checks use it
    to locate what SpiffWorkflow reports by id alone.
    """
    problems = []
    local: dict[str, int] = {}
    shared = _shared(root)
    for el in _model_ids(root):
        element_id, line = el.get("id"), el.sourceline
        other = seen.get(element_id)
        if element_id in local:
            message = (
                f"two elements share the id `{element_id}` (lines {local[element_id]} and {line})"
            )
            problems.append(Problem(filename, line, message, element_id))
        elif other and el in shared and other[0] != filename:
            message = (
                f"the id `{element_id}` is also used in {other[0]} (line {other[1]}); processes, "
                "tasks and decisions need ids unique across the bundle"
            )
            problems.append(Problem(filename, line, message, element_id))
        local.setdefault(element_id, line)
        seen.setdefault(element_id, (filename, line))
        if element_id in RESERVED_IDS or element_id.endswith(RESERVED_SUFFIXES):
            message = f"the id `{element_id}` is reserved by the engine; rename the element"
            problems.append(Problem(filename, line, message, element_id))
    return problems + _extension_ids(root, filename, local)


def check_missing_ids(root: etree._Element, filename: str) -> list[Problem]:
    """Processes and what flows in them need ids: the engine names its tasks and flows by them."""
    problems = []
    for container in root.iter(*(f"{{{BPMN_NS}}}{kind}" for kind in CONTAINERS)):
        children = [container] if _local(container) == "process" else []
        for el in [*children, *container]:
            if is_model(el) and not el.get("id") and _local(el) not in ID_OPTIONAL:
                message = f"the <{_local(el)}> on line {el.sourceline} has no id; give it one"
                problems.append(Problem(filename, el.sourceline, message))
    return problems


def _extension_ids(root: etree._Element, filename: str, local: dict[str, int]) -> list[Problem]:
    """An extension element with a model element's id hides that element from the parser."""
    problems = []
    for el in root.iter():
        if isinstance(el.tag, str) and not is_model(el) and el.get("id") in local:
            element_id = el.get("id")
            message = (
                f"the <{_local(el)}> setting uses the id `{element_id}`, which is the id of the "
                f"element on line {local[element_id]}; rename one of them"
            )
            problems.append(Problem(filename, el.sourceline, message, element_id))
    return problems


def check_references(root: etree._Element, filename: str) -> list[Problem]:
    """Sequence flows, boundary events and default flows must name elements of their process."""
    problems = []
    for process in root.iterfind(".//bpmn:process", NS):
        ids = {el.get("id"): el for el in _model_ids(process)}
        for flow in process.iterfind(".//bpmn:sequenceFlow", NS):
            for attr, word in (("sourceRef", "comes from"), ("targetRef", "goes to")):
                ref = flow.get(attr) or ""
                if ref not in ids:
                    message = f"sequence flow {_ref(flow)} {word} `{ref}`, which does not exist"
                    problems.append(Problem(filename, flow.sourceline, message, flow.get("id")))
        for event in process.iterfind(".//bpmn:boundaryEvent", NS):
            ref = event.get("attachedToRef") or ""
            if ref not in ids:
                message = (
                    f"boundary event {label(event)} is attached to `{ref}`, which does not exist"
                )
                problems.append(Problem(filename, event.sourceline, message, event.get("id")))
        for el in process.iterfind(".//*[@default]"):
            flow = ids.get(el.get("default"))
            if flow is None or flow.get("sourceRef") != el.get("id"):
                message = (
                    f"the default flow `{el.get('default')}` of {label(el)} is not one of its "
                    "outgoing sequence flows"
                )
                problems.append(Problem(filename, el.sourceline, message, el.get("id")))
    return problems


def check_event_refs(root: etree._Element, filename: str) -> list[Problem]:
    """A message, signal, error or escalation an event names must be defined in its file."""
    problems = []
    for kind, attr in EVENT_REFS.items():
        defined = {el.get("id") for el in root.iterfind(f"bpmn:{kind}", NS)}
        for definition in root.iterfind(f".//bpmn:{kind}EventDefinition", NS):
            ref = definition.get(attr)
            if ref is not None and ref not in defined:
                event = owner_of(definition)
                message = (
                    f"event {label(event)} refers to the {kind} `{ref}`, which is not defined in "
                    f"this file; pick a {kind} in the modeler"
                )
                problems.append(Problem(filename, definition.sourceline, message, event.get("id")))
    return problems


def check_settings(root: etree._Element, filename: str) -> list[Problem]:
    """SpiffWorkflow settings carry the attributes the engine reads without a default."""
    problems = []
    for tag, attrs in SPIFF_REQUIRED.items():
        for el in root.iterfind(f".//spiffworkflow:{tag}", NS):
            missing = [a for a in attrs if el.get(a) is None]
            if missing:
                owner = owner_of(el)
                message = (
                    f"the <spiffworkflow:{tag}> setting of {label(owner)} has no "
                    f"{' or '.join(missing)}"
                )
                problems.append(Problem(filename, el.sourceline, message, owner.get("id")))
    return problems


def check_layout(root: etree._Element, filename: str) -> list[Problem]:
    """Shape positions must be numbers: the engine orders parallel branches by them."""
    problems = []
    for el in root.iter(f"{{{DC_NS}}}Bounds", f"{{{DI_NS}}}waypoint"):
        for attr in ("x", "y", "width", "height"):
            value = el.get(attr)
            if value is None or _is_number(value):
                continue
            shown = el.getparent().get("bpmnElement")
            message = (
                f'the drawing of `{shown}` has a position {attr}="{value}" that is not a '
                "number; open the diagram in the modeler and save it again"
            )
            problems.append(Problem(filename, el.sourceline, message, shown))
            break
    return problems


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _event_gateway_targets(root, filename: str, outgoing: dict) -> list[Problem]:
    """An event-based gateway waits for the first of several events: it can lead only to those."""
    problems = []
    nodes = {el.get("id"): el for el in _model_ids(root)}
    for gateway in root.iterfind(".//bpmn:eventBasedGateway", NS):
        for flow in outgoing.get(gateway.get("id"), []):
            target = nodes.get(flow.get("targetRef"))
            if target is not None and _local(target) not in (
                "intermediateCatchEvent",
                "receiveTask",
            ):
                message = (
                    f"event-based gateway {label(gateway)} leads to {label(target)}, a "
                    f"{_local(target)}; it may lead only to events that wait (timer, message, "
                    "signal) or receive tasks"
                )
                problems.append(Problem(filename, flow.sourceline, message, flow.get("id")))
    return problems


def check_gateways(root: etree._Element, filename: str) -> list[Problem]:
    """Every outgoing flow of a deciding gateway needs a condition, except the default flow."""
    problems = []
    outgoing: dict[str, list[etree._Element]] = {}
    for flow in root.iterfind(".//bpmn:sequenceFlow", NS):
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow)
    problems += _event_gateway_targets(root, filename, outgoing)
    for kind in GATEWAYS_NEEDING_CONDITIONS:
        for gateway in root.iterfind(f".//bpmn:{kind}", NS):
            flows = outgoing.get(gateway.get("id"), [])
            if len(flows) < 2:
                continue
            for flow in flows:
                if gateway.get("default") and flow.get("id") == gateway.get("default"):
                    continue
                condition = flow.find("bpmn:conditionExpression", NS)
                if condition is None or not (condition.text or "").strip():
                    message = (
                        f"sequence flow {_ref(flow)} leaves gateway {label(gateway)} with no "
                        "condition; give it one, or make it the gateway's default flow"
                    )
                    problems.append(Problem(filename, flow.sourceline, message, flow.get("id")))
    return problems


def check_executable(root: etree._Element, filename: str) -> list[Problem]:
    """A file whose processes are all non-executable would deploy to nothing; say so."""
    processes = root.findall("bpmn:process", NS)
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    if processes and executable:
        return [
            Problem(
                filename,
                p.sourceline,
                f"process {label(p)} is not executable, so it will never run; set "
                'isExecutable="true" if it should',
                p.get("id"),
                severity="warning",
            )
            for p in processes
            if p not in executable
        ]
    line = processes[0].sourceline if processes else root.sourceline
    element_id = processes[0].get("id") if processes else None
    message = 'no executable process: set isExecutable="true" on the process to run'
    if not processes:
        message = "the diagram has no process: draw the process inside a pool or on the canvas"
    return [Problem(filename, line, message, element_id)]


def check_bpmn(root: etree._Element, filename: str, seen_ids: dict) -> list[Problem]:
    """Every structural check of one BPMN file (its code is checked by `expression_checks`)."""
    return (
        check_executable(root, filename)
        + check_ids(root, filename, seen_ids)
        + check_missing_ids(root, filename)
        + check_references(root, filename)
        + check_event_refs(root, filename)
        + check_layout(root, filename)
        + check_settings(root, filename)
        + check_gateways(root, filename)
    )
